// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {ProtocolLimits} from "./libraries/ProtocolLimits.sol";

/// @title StakeManager
/// @notice Holds the ETH stake of providers and validators.
/// @dev Invariant: `address(this).balance == Σ (staked + unbonding)` over all accounts, and
///      `locked <= staked` for every account. Locked collateral moves only on the bound
///      market's word; the slasher role reaches free and unbonding stake, never locked stake,
///      so that the market's per-job accounting can never be undercut.
contract StakeManager is IStakeManager, AccessControl, ReentrancyGuardTransient {
    /// @notice Role of the dispute contract: may slash free and unbonding stake.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    /// @inheritdoc IStakeManager
    address public market;
    /// @inheritdoc IStakeManager
    uint256 public unbondingDelay;

    mapping(address account => Account) internal _accounts;

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket();
        _;
    }

    /// @param admin Holder of the default admin role (a timelock in production).
    /// @param unbondingDelay_ Initial unbonding delay in seconds, within the protocol limits.
    constructor(address admin, uint256 unbondingDelay_) {
        if (admin == address(0)) revert ZeroAddress();
        _checkUnbondingDelay(unbondingDelay_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        unbondingDelay = unbondingDelay_;
        emit UnbondingDelayUpdated(0, unbondingDelay_);
    }

    /// @inheritdoc IStakeManager
    function stake() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        uint256 total = uint256(a.staked) + msg.value;
        if (total > type(uint128).max) revert AmountTooLarge(msg.value);
        a.staked = uint128(total);
        emit Staked(msg.sender, msg.value, total);
    }

    /// @inheritdoc IStakeManager
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        uint256 free = uint256(a.staked) - a.locked;
        if (amount > free) revert InsufficientFreeStake(amount, free);
        // amount <= staked < 2^128, so both casts are exact.
        a.staked -= uint128(amount);
        a.unbonding += uint128(amount);
        uint256 readyAt = block.timestamp + unbondingDelay;
        a.unbondsAt = uint64(readyAt);
        emit UnstakeRequested(msg.sender, amount, readyAt);
    }

    /// @inheritdoc IStakeManager
    function withdrawStake() external nonReentrant {
        Account storage a = _accounts[msg.sender];
        uint256 amount = a.unbonding;
        if (amount == 0) revert NothingUnbonding();
        if (block.timestamp < a.unbondsAt) revert StillUnbonding(a.unbondsAt);
        a.unbonding = 0;
        a.unbondsAt = 0;
        emit StakeWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IStakeManager
    function lockCollateral(address account, uint256 amount, uint256 minStake) external onlyMarket {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[account];
        uint256 staked = a.staked;
        if (staked < minStake) revert StakeBelowMinimum(staked, minStake);
        uint256 free = staked - a.locked;
        if (amount > free) revert InsufficientFreeStake(amount, free);
        a.locked += uint128(amount);
        emit CollateralLocked(account, amount);
    }

    /// @inheritdoc IStakeManager
    function releaseCollateral(address account, uint256 amount) external onlyMarket {
        Account storage a = _accounts[account];
        if (amount > a.locked) revert ExceedsLocked(amount, a.locked);
        a.locked -= uint128(amount);
        emit CollateralReleased(account, amount);
    }

    /// @inheritdoc IStakeManager
    function seizeCollateral(address account, uint256 amount) external onlyMarket nonReentrant {
        Account storage a = _accounts[account];
        if (amount > a.locked) revert ExceedsLocked(amount, a.locked);
        a.locked -= uint128(amount);
        a.staked -= uint128(amount);
        emit CollateralSeized(account, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IStakeManager
    function slash(address account, uint256 amount) external onlyRole(SLASHER_ROLE) nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[account];
        uint256 free = uint256(a.staked) - a.locked;
        uint256 available = free + a.unbonding;
        if (amount > available) revert SlashExceedsStake(amount, available);
        uint256 fromFree = amount < free ? amount : free;
        a.staked -= uint128(fromFree);
        a.unbonding -= uint128(amount - fromFree);
        emit Slashed(account, msg.sender, amount);
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IStakeManager
    function setUnbondingDelay(uint256 newDelay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkUnbondingDelay(newDelay);
        uint256 oldDelay = unbondingDelay;
        unbondingDelay = newDelay;
        emit UnbondingDelayUpdated(oldDelay, newDelay);
    }

    /// @inheritdoc IStakeManager
    function bindMarket(address market_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (market_ == address(0)) revert ZeroAddress();
        if (market != address(0)) revert MarketAlreadyBound();
        market = market_;
        emit MarketBound(market_);
    }

    /// @inheritdoc IStakeManager
    function accountOf(address account) external view returns (Account memory) {
        return _accounts[account];
    }

    /// @inheritdoc IStakeManager
    function freeStakeOf(address account) external view returns (uint256) {
        Account storage a = _accounts[account];
        return uint256(a.staked) - a.locked;
    }

    function _checkUnbondingDelay(uint256 delay) private pure {
        if (delay < ProtocolLimits.MIN_UNBONDING_DELAY || delay > ProtocolLimits.MAX_UNBONDING_DELAY) {
            revert UnbondingDelayOutOfBounds(
                delay, ProtocolLimits.MIN_UNBONDING_DELAY, ProtocolLimits.MAX_UNBONDING_DELAY
            );
        }
    }
}
