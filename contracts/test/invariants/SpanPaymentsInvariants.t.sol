// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SpanPayments} from "../../src/SpanPayments.sol";
import {InvariantTest, Test} from "../utils/Test.sol";

/// @notice Random deposits, withdrawals and redemptions by three clients and two servers, with
///         a ledger of what went in and out and of the largest amount each channel was signed.
contract SpanPaymentsHandler is Test {
    SpanPayments internal immutable payments;
    uint256[3] internal keys = [uint256(0xA11CE), 0xB0B, 0xCA201];
    address[2] internal servers;

    uint256 public deposited;
    uint256 public withdrawn;
    uint256 public redeemed;
    mapping(bytes32 channel => uint256) public maxSigned;

    /// @notice Every channel signed for: its client, server and session.
    struct Channel {
        address client;
        address server;
        uint64 session;
    }

    Channel[] internal _channels;

    constructor(SpanPayments payments_) {
        payments = payments_;
        servers = [makeAddr("server a"), makeAddr("server b")];
    }

    function client(uint256 i) public view returns (address) {
        return vm.addr(keys[i % 3]);
    }

    function channelCount() external view returns (uint256) {
        return _channels.length;
    }

    function channel(uint256 i) external view returns (Channel memory) {
        return _channels[i];
    }

    function deposit(uint256 c, uint256 amount) external {
        amount = bound(amount, 1, 5 ether);
        address who = client(c);
        vm.deal(who, amount);
        vm.prank(who);
        payments.deposit{value: amount}();
        deposited += amount;
    }

    function requestWithdrawal(uint256 c, uint256 amount) external {
        address who = client(c);
        uint256 balance = payments.accountOf(who).balance;
        if (balance == 0) return;
        vm.prank(who);
        payments.requestWithdrawal(bound(amount, 1, balance));
    }

    function withdraw(uint256 c, uint256 wait) external {
        address who = client(c);
        SpanPayments.Account memory a = payments.accountOf(who);
        if (a.unlockAt == 0) return;
        vm.warp(block.timestamp + bound(wait, 0, 2 days));
        uint256 before = who.balance;
        vm.prank(who);
        try payments.withdraw() {
            withdrawn += who.balance - before;
        } catch {
            assertLtTime(a.unlockAt);
        }
    }

    function assertLtTime(uint64 unlockAt) internal view {
        vm.assertLt(block.timestamp, unlockAt, "a withdrawal failed only while locked");
    }

    function redeem(uint256 c, uint256 s, uint64 session, uint256 amount) external {
        uint256 key = keys[c % 3];
        address server = servers[s % 2];
        session = session % 4;
        amount = bound(amount, 0, 10 ether);
        bytes32 outputs = keccak256(abi.encode(amount));
        (uint8 v, bytes32 r, bytes32 sg) =
            vm.sign(key, payments.voucherDigest(server, session, amount, outputs));
        bytes32 channel = payments.channelOf(vm.addr(key), server, session);
        if (maxSigned[channel] == 0 && amount > 0) _channels.push(Channel(vm.addr(key), server, session));
        if (amount > maxSigned[channel]) maxSigned[channel] = amount;
        uint256 before = server.balance;
        vm.prank(server);
        try payments.redeem(vm.addr(key), session, amount, outputs, abi.encodePacked(r, sg, v)) {
            redeemed += server.balance - before;
        } catch {}
    }
}

/// @notice SpanPayments holds exactly its clients' balances, to the wei; what went in is what
///         is in it plus what went out; no session is paid more than the largest voucher its
///         client signed for it.
contract SpanPaymentsInvariantsTest is InvariantTest {
    SpanPayments internal payments;
    SpanPaymentsHandler internal handler;

    function setUp() public {
        payments = new SpanPayments(1 days);
        handler = new SpanPaymentsHandler(payments);
        bytes4[] memory selectors = new bytes4[](4);
        selectors[0] = SpanPaymentsHandler.deposit.selector;
        selectors[1] = SpanPaymentsHandler.requestWithdrawal.selector;
        selectors[2] = SpanPaymentsHandler.withdraw.selector;
        selectors[3] = SpanPaymentsHandler.redeem.selector;
        targetSelector(address(handler), selectors);
    }

    function invariant_solventToTheWei() public view {
        uint256 sum;
        for (uint256 i; i < 3; ++i) {
            sum += payments.accountOf(handler.client(i)).balance;
        }
        vm.assertEq(address(payments).balance, sum, "holds exactly the balances");
        vm.assertEq(
            handler.deposited(),
            sum + handler.withdrawn() + handler.redeemed(),
            "in = held + withdrawn + redeemed"
        );
    }

    function invariant_noSessionPaidMoreThanSigned() public view {
        uint256 n = handler.channelCount();
        for (uint256 i; i < n; ++i) {
            SpanPaymentsHandler.Channel memory c = handler.channel(i);
            vm.assertLe(
                payments.paidOf(c.client, c.server, c.session),
                handler.maxSigned(payments.channelOf(c.client, c.server, c.session)),
                "paid at most the largest voucher"
            );
        }
    }
}
