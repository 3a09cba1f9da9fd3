// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title SpanPayments
/// @notice Pays the span servers of split-model inference without a transaction per token
///         (docs/split-inference.md, "Payment"). A client deposits ETH; for each session with a
///         server it signs cumulative vouchers (EIP-712) as tokens go through the server's
///         span; the server redeems the latest voucher it holds whenever it wants, in one
///         transaction, and is paid what that voucher adds to what the session already paid.
///         Each voucher commits to the hash chain of the span outputs it pays for, and a
///         redemption puts that commitment on-chain, where verification can hold the server
///         to it. A client's withdrawal waits `withdrawDelay`, so that servers can redeem the
///         vouchers they hold before the money leaves.
/// @dev Invariant: `address(this).balance == Σ_clients balance`. Nobody but a client moves its
///      balance out, to itself after the delay, or to a server through a voucher it signed for
///      that server; a voucher is bound to this contract and chain (the EIP-712 domain), to one
///      server (the redeemer) and one session, and pays at most its amount in all.
contract SpanPayments is EIP712, ReentrancyGuard {
    /// @notice The EIP-712 type of a voucher: the `server` it pays, the client's `session`
    ///         number with it, the cumulative `amount` in wei, and `outputs`, the head of the
    ///         hash chain of the span outputs paid for.
    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(address server,uint64 session,uint256 amount,bytes32 outputs)");
    /// @notice The shortest and longest withdrawal delay a deployment may have.
    uint256 public constant MIN_WITHDRAW_DELAY = 60;
    uint256 public constant MAX_WITHDRAW_DELAY = 30 days;

    /// @notice How long a requested withdrawal waits, in seconds.
    uint256 public immutable withdrawDelay;

    /// @notice A client's deposit.
    /// @param balance What it holds, in wei.
    /// @param withdrawing What it asked to withdraw (0: nothing).
    /// @param unlockAt When that withdrawal may be taken (0: none requested).
    struct Account {
        uint256 balance;
        uint256 withdrawing;
        uint64 unlockAt;
    }

    mapping(address client => Account) internal _accounts;
    mapping(bytes32 channel => uint256) internal _paid;

    /// @notice `client` deposited `amount`, and now holds `balance`.
    event Deposited(address indexed client, uint256 amount, uint256 balance);
    /// @notice `client` asked to withdraw `amount`, which it may take from `unlockAt`.
    event WithdrawalRequested(address indexed client, uint256 amount, uint64 unlockAt);
    /// @notice `client` took `amount` out.
    event Withdrawn(address indexed client, uint256 amount);
    /// @notice `server` was paid `amount` for `session` of `client`, `total` in all, for the
    ///         span outputs whose hash chain ends in `outputs`.
    event Redeemed(
        address indexed client,
        address indexed server,
        uint64 indexed session,
        uint256 amount,
        uint256 total,
        bytes32 outputs
    );

    /// @notice The delay is outside `MIN_WITHDRAW_DELAY..=MAX_WITHDRAW_DELAY`.
    error DelayOutOfRange(uint256 delay);
    /// @notice A deposit or withdrawal of nothing.
    error ZeroAmount();
    /// @notice A withdrawal of more than the balance.
    error InsufficientBalance(uint256 balance, uint256 asked);
    /// @notice No withdrawal was requested.
    error NoWithdrawal();
    /// @notice The withdrawal may be taken from `unlockAt`, not before.
    error Locked(uint64 unlockAt);
    /// @notice The voucher was not signed by the client it names, for this server.
    error BadSignature();
    /// @notice The voucher adds nothing to what the session was paid, or the client holds
    ///         nothing to pay it with.
    error NothingToRedeem(uint256 paid, uint256 amount, uint256 balance);
    /// @notice Sending ETH failed.
    error TransferFailed();

    /// @param delay How long a requested withdrawal waits, in seconds.
    constructor(uint256 delay) EIP712("Pedals SpanPayments", "1") {
        if (delay < MIN_WITHDRAW_DELAY || delay > MAX_WITHDRAW_DELAY) revert DelayOutOfRange(delay);
        withdrawDelay = delay;
    }

    /// @notice Adds the value sent to the caller's deposit.
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        a.balance += msg.value;
        emit Deposited(msg.sender, msg.value, a.balance);
    }

    /// @notice Asks to withdraw `amount`, from `withdrawDelay` seconds from now; a new request
    ///         replaces the previous one and starts its clock again. Servers should serve a
    ///         client with a pending withdrawal no further.
    /// @param amount What to withdraw, at most the balance.
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        if (amount > a.balance) revert InsufficientBalance(a.balance, amount);
        uint64 unlockAt = uint64(block.timestamp + withdrawDelay);
        (a.withdrawing, a.unlockAt) = (amount, unlockAt);
        emit WithdrawalRequested(msg.sender, amount, unlockAt);
    }

    /// @notice Takes the requested withdrawal once unlocked: the amount asked, or the balance
    ///         if redemptions since left less.
    function withdraw() external nonReentrant {
        Account storage a = _accounts[msg.sender];
        if (a.unlockAt == 0) revert NoWithdrawal();
        if (block.timestamp < a.unlockAt) revert Locked(a.unlockAt);
        uint256 amount = a.withdrawing < a.balance ? a.withdrawing : a.balance;
        a.balance -= amount;
        (a.withdrawing, a.unlockAt) = (0, 0);
        emit Withdrawn(msg.sender, amount);
        _payCaller(amount);
    }

    /// @notice Redeems a voucher that `client` signed for the caller: pays what its `amount`
    ///         adds to what `session` was paid so far, or as much of it as the client holds
    ///         (the same voucher pays the rest after a new deposit).
    /// @param client The client that signed it.
    /// @param session The client's session number with the caller.
    /// @param amount The cumulative amount it pays, in wei.
    /// @param outputs The head of the hash chain of the span outputs it pays for.
    /// @param signature The client's signature of the voucher (65 bytes, r‖s‖v).
    /// @return paid What this call paid.
    function redeem(address client, uint64 session, uint256 amount, bytes32 outputs, bytes calldata signature)
        external
        nonReentrant
        returns (uint256 paid)
    {
        _checkVoucher(client, session, amount, outputs, signature);
        uint256 total;
        (paid, total) = _charge(client, channelOf(client, msg.sender, session), amount);
        emit Redeemed(client, msg.sender, session, paid, total, outputs);
        _payCaller(paid);
    }

    /// @notice The EIP-712 digest a client signs for a voucher.
    /// @param server The server it pays.
    /// @param session The client's session number with it.
    /// @param amount The cumulative amount, in wei.
    /// @param outputs The head of the outputs' hash chain.
    /// @return The digest.
    function voucherDigest(address server, uint64 session, uint256 amount, bytes32 outputs)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, server, session, amount, outputs)));
    }

    /// @notice The key of a session's payments.
    /// @param client The client.
    /// @param server The server.
    /// @param session The client's session number with the server.
    /// @return The channel's key.
    function channelOf(address client, address server, uint64 session) public pure returns (bytes32) {
        return keccak256(abi.encode(client, server, session));
    }

    /// @notice What a session has been paid so far.
    /// @param client The client.
    /// @param server The server.
    /// @param session The session number.
    /// @return The wei paid.
    function paidOf(address client, address server, uint64 session) external view returns (uint256) {
        return _paid[channelOf(client, server, session)];
    }

    /// @notice A client's deposit.
    /// @param client The client.
    /// @return The account.
    function accountOf(address client) external view returns (Account memory) {
        return _accounts[client];
    }

    /// @dev Reverts unless `client` signed the voucher for the caller.
    function _checkVoucher(
        address client,
        uint64 session,
        uint256 amount,
        bytes32 outputs,
        bytes calldata signature
    ) private view {
        bytes32 digest = voucherDigest(msg.sender, session, amount, outputs);
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != client || client == address(0)) {
            revert BadSignature();
        }
    }

    /// @dev Takes what a voucher of cumulative `amount` adds to `channel`'s payments from
    ///      `client`'s balance, as much as it holds; returns that and the channel's new total.
    function _charge(address client, bytes32 channel, uint256 amount)
        private
        returns (uint256 paid, uint256 total)
    {
        uint256 before = _paid[channel];
        Account storage a = _accounts[client];
        uint256 due = amount > before ? amount - before : 0;
        paid = due < a.balance ? due : a.balance;
        if (paid == 0) revert NothingToRedeem(before, amount, a.balance);
        total = before + paid;
        _paid[channel] = total;
        a.balance -= paid;
    }

    /// @dev Sends `amount` to the caller (the client withdrawing, or the server redeeming).
    function _payCaller(uint256 amount) private {
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
