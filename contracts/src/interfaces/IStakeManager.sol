// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IStakeManager
/// @notice Stake of providers and validators. Stake is deposited, can be locked by the bound
///         market as collateral for a claimed job, and leaves only through an unbonding delay
///         that outlasts every challenge window and dispute. The slasher role (the dispute
///         contract) can slash free and unbonding stake; only the market touches locked stake.
interface IStakeManager {
    /// @notice One staker's balances.
    /// @param staked Active stake, including the part locked as collateral.
    /// @param locked Part of `staked` locked as collateral by the market.
    /// @param unbonding Stake that left `staked` and waits out the unbonding delay.
    /// @param unbondsAt Timestamp from which `unbonding` can be withdrawn.
    struct Account {
        uint128 staked;
        uint128 locked;
        uint128 unbonding;
        uint64 unbondsAt;
    }

    /// @notice `account` added `amount` to its stake, which is now `totalStaked`.
    event Staked(address indexed account, uint256 amount, uint256 totalStaked);
    /// @notice `account` moved `amount` into unbonding; all of its unbonding stake unlocks at `unbondsAt`.
    event UnstakeRequested(address indexed account, uint256 amount, uint256 unbondsAt);
    /// @notice `account` withdrew `amount` of unbonded stake.
    event StakeWithdrawn(address indexed account, uint256 amount);
    /// @notice The market locked `amount` of `account`'s stake as collateral.
    event CollateralLocked(address indexed account, uint256 amount);
    /// @notice The market released `amount` of `account`'s collateral back to free stake.
    event CollateralReleased(address indexed account, uint256 amount);
    /// @notice The market seized `amount` of `account`'s locked collateral.
    event CollateralSeized(address indexed account, uint256 amount);
    /// @notice The slasher `slasher` slashed `amount` of `account`'s free or unbonding stake.
    event Slashed(address indexed account, address indexed slasher, uint256 amount);
    /// @notice The admin changed the unbonding delay.
    event UnbondingDelayUpdated(uint256 oldDelay, uint256 newDelay);
    /// @notice The admin bound the market contract (once, for good).
    event MarketBound(address indexed market);

    /// @notice A stake, unstake, lock or slash of zero.
    error ZeroAmount();
    /// @notice Not enough free (unlocked) stake for the request.
    error InsufficientFreeStake(uint256 requested, uint256 available);
    /// @notice The account's total stake is below the minimum the market requires.
    error StakeBelowMinimum(uint256 staked, uint256 minimum);
    /// @notice There is no unbonding stake to withdraw.
    error NothingUnbonding();
    /// @notice The unbonding stake unlocks only at `unbondsAt`.
    error StillUnbonding(uint256 unbondsAt);
    /// @notice Only the bound market may call this.
    error NotMarket();
    /// @notice The market is bound already.
    error MarketAlreadyBound();
    /// @notice A zero address where a contract is required.
    error ZeroAddress();
    /// @notice The unbonding delay must lie in `[min, max]`.
    error UnbondingDelayOutOfBounds(uint256 delay, uint256 min, uint256 max);
    /// @notice The market tried to release or seize more than is locked.
    error ExceedsLocked(uint256 requested, uint256 locked);
    /// @notice A slash larger than the account's free plus unbonding stake.
    error SlashExceedsStake(uint256 requested, uint256 available);
    /// @notice An ETH transfer failed; the state was not changed.
    error TransferFailed();
    /// @notice The amount does not fit the stake manager's 128-bit balances.
    error AmountTooLarge(uint256 amount);

    /// @notice Adds `msg.value` to the caller's stake.
    function stake() external payable;

    /// @notice Moves `amount` of free stake into unbonding; it can be withdrawn after the
    ///         unbonding delay. A new request restarts the delay for all unbonding stake.
    /// @param amount Wei to unbond; at most the caller's free stake.
    function requestUnstake(uint256 amount) external;

    /// @notice Sends the caller its unbonding stake once the delay has passed.
    function withdrawStake() external;

    /// @notice Locks `amount` of `account`'s free stake as job collateral. Market only.
    /// @param account The provider.
    /// @param amount Wei to lock.
    /// @param minStake The market's minimum total stake for a provider.
    function lockCollateral(address account, uint256 amount, uint256 minStake) external;

    /// @notice Returns `amount` of `account`'s locked collateral to its free stake. Market only.
    function releaseCollateral(address account, uint256 amount) external;

    /// @notice Takes `amount` of `account`'s locked collateral and sends it to the market. Market only.
    function seizeCollateral(address account, uint256 amount) external;

    /// @notice Slashes `amount` of `account`'s free stake, then of its unbonding stake, and sends
    ///         it to the caller. Slasher role only; locked collateral is the market's to seize.
    function slash(address account, uint256 amount) external;

    /// @notice Sets the unbonding delay within the protocol limits. Admin only.
    function setUnbondingDelay(uint256 newDelay) external;

    /// @notice Binds the market contract, once. Admin only.
    function bindMarket(address market_) external;

    /// @notice The balances of `account`.
    function accountOf(address account) external view returns (Account memory);

    /// @notice Stake of `account` that is neither locked nor unbonding.
    function freeStakeOf(address account) external view returns (uint256);

    /// @notice The bound market, or zero before binding.
    function market() external view returns (address);

    /// @notice The current unbonding delay in seconds.
    function unbondingDelay() external view returns (uint256);
}
