// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {StakeManager} from "../src/StakeManager.sol";
import {IStakeManager} from "../src/interfaces/IStakeManager.sol";
import {ProtocolLimits} from "../src/libraries/ProtocolLimits.sol";
import {Test} from "./utils/Test.sol";
import {EtherRefuser} from "./utils/EtherRefuser.sol";

/// @notice Stands in for the job market: forwards the market-only calls and can refuse ETH.
contract MarketStub {
    StakeManager internal immutable stakes;
    bool public refuseEther;
    uint256 public received;

    constructor(StakeManager stakes_) {
        stakes = stakes_;
    }

    function setRefuseEther(bool refuse) external {
        refuseEther = refuse;
    }

    function lock(address account, uint256 amount, uint256 minStake) external {
        stakes.lockCollateral(account, amount, minStake);
    }

    function release(address account, uint256 amount) external {
        stakes.releaseCollateral(account, amount);
    }

    function seize(address account, uint256 amount) external {
        stakes.seizeCollateral(account, amount);
    }

    receive() external payable {
        require(!refuseEther, "refused");
        received += msg.value;
    }
}

/// @notice A staker whose receive() re-enters withdrawStake.
contract ReentrantStaker {
    StakeManager internal immutable stakes;
    /// When true, the reentrant call's failure is swallowed so the outer withdrawal can finish.
    bool public swallow;
    uint256 public received;
    uint256 public reentryAttempts;
    bytes public reentryError;

    constructor(StakeManager stakes_) {
        stakes = stakes_;
    }

    function setSwallow(bool swallow_) external {
        swallow = swallow_;
    }

    function stake() external payable {
        stakes.stake{value: msg.value}();
    }

    function requestUnstake(uint256 amount) external {
        stakes.requestUnstake(amount);
    }

    function withdrawStake() external {
        stakes.withdrawStake();
    }

    receive() external payable {
        received += msg.value;
        if (reentryAttempts > 0) return;
        reentryAttempts++;
        if (swallow) {
            try stakes.withdrawStake() {}
            catch (bytes memory err) {
                reentryError = err;
            }
        } else {
            stakes.withdrawStake();
        }
    }
}

contract StakeManagerTest is Test {
    StakeManager internal stakes;
    MarketStub internal market;

    address internal admin;
    address internal slasher;
    address internal alice;
    address internal bob;
    address internal stranger;

    uint256 internal constant MIN_DELAY = ProtocolLimits.MIN_UNBONDING_DELAY;
    uint256 internal constant MAX_DELAY = ProtocolLimits.MAX_UNBONDING_DELAY;
    uint256 internal constant T0 = 1_700_000_000;
    bytes32 internal constant DEFAULT_ADMIN_ROLE = 0x00;
    bytes32 internal slasherRole;

    function setUp() public {
        admin = makeAddr("admin");
        slasher = makeAddr("slasher");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        stranger = makeAddr("stranger");

        stakes = new StakeManager(admin, MIN_DELAY);
        market = new MarketStub(stakes);
        slasherRole = stakes.SLASHER_ROLE();
        vm.startPrank(admin);
        stakes.bindMarket(address(market));
        stakes.grantRole(slasherRole, slasher);
        vm.stopPrank();

        vm.deal(alice, 1000 ether);
        vm.deal(bob, 1000 ether);
        vm.deal(stranger, 1000 ether);
        vm.warp(T0);
        vm.roll(100);
    }

    // ───────────────────────────────────────── helpers ─────────────────────────────────────────

    function _stake(address who, uint256 amount) internal {
        vm.deal(who, who.balance + amount);
        vm.prank(who);
        stakes.stake{value: amount}();
    }

    function _unstake(address who, uint256 amount) internal {
        vm.prank(who);
        stakes.requestUnstake(amount);
    }

    function _lock(address who, uint256 amount) internal {
        market.lock(who, amount, 0);
    }

    function _assertAccount(address who, uint256 staked, uint256 locked, uint256 unbonding, string memory m)
        internal
        view
    {
        IStakeManager.Account memory a = stakes.accountOf(who);
        vm.assertEq(a.staked, staked, string.concat(m, ": staked"));
        vm.assertEq(a.locked, locked, string.concat(m, ": locked"));
        vm.assertEq(a.unbonding, unbonding, string.concat(m, ": unbonding"));
        vm.assertEq(stakes.freeStakeOf(who), staked - locked, string.concat(m, ": free"));
    }

    function _unauthorized(address who, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, role);
    }

    // ─────────────────────────────────────── constructor ───────────────────────────────────────

    function test_constructor_setsState_succeeds() public {
        vm.expectEmit();
        emit IStakeManager.UnbondingDelayUpdated(0, MAX_DELAY);
        StakeManager s = new StakeManager(admin, MAX_DELAY);
        vm.assertEq(s.unbondingDelay(), MAX_DELAY, "delay");
        vm.assertEq(s.market(), address(0), "unbound");
        vm.assertTrue(s.hasRole(DEFAULT_ADMIN_ROLE, admin), "admin role");
        vm.assertFalse(s.hasRole(s.SLASHER_ROLE(), admin), "no slasher role");
        vm.assertEq(s.SLASHER_ROLE(), keccak256("SLASHER_ROLE"), "role id");
    }

    function test_constructor_zeroAdmin_reverts() public {
        vm.expectRevert(IStakeManager.ZeroAddress.selector);
        new StakeManager(address(0), MIN_DELAY);
    }

    function test_constructor_delayTooShort_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakeManager.UnbondingDelayOutOfBounds.selector, MIN_DELAY - 1, MIN_DELAY, MAX_DELAY
            )
        );
        new StakeManager(admin, MIN_DELAY - 1);
    }

    function test_constructor_delayTooLong_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakeManager.UnbondingDelayOutOfBounds.selector, MAX_DELAY + 1, MIN_DELAY, MAX_DELAY
            )
        );
        new StakeManager(admin, MAX_DELAY + 1);
    }

    function test_unbondingDelay_outlastsWindowPlusDispute_succeeds() public pure {
        // The property that makes "unstaking ahead of a slash" pointless.
        require(
            MIN_DELAY > ProtocolLimits.MAX_CHALLENGE_WINDOW + ProtocolLimits.MAX_DISPUTE_DURATION,
            "delay bound"
        );
    }

    // ───────────────────────────────────────── stake ───────────────────────────────────────────

    function test_stake_succeeds() public {
        vm.expectEmit(address(stakes));
        emit IStakeManager.Staked(alice, 1 ether, 1 ether);
        vm.prank(alice);
        stakes.stake{value: 1 ether}();

        vm.expectEmit(address(stakes));
        emit IStakeManager.Staked(alice, 2 ether, 3 ether);
        vm.prank(alice);
        stakes.stake{value: 2 ether}();

        _assertAccount(alice, 3 ether, 0, 0, "alice");
        vm.assertEq(address(stakes).balance, 3 ether, "held");
        vm.assertEq(alice.balance, 997 ether, "paid");
    }

    function test_stake_zero_reverts() public {
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        vm.prank(alice);
        stakes.stake{value: 0}();
    }

    function test_stake_overflowsUint128_reverts() public {
        uint256 max = type(uint128).max;
        vm.deal(alice, max + 1);
        vm.prank(alice);
        stakes.stake{value: max}();
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.AmountTooLarge.selector, 1));
        vm.prank(alice);
        stakes.stake{value: 1}();
        _assertAccount(alice, max, 0, 0, "alice");
    }

    // ───────────────────────────────────── requestUnstake ──────────────────────────────────────

    function test_requestUnstake_succeeds() public {
        _stake(alice, 5 ether);
        vm.expectEmit(address(stakes));
        emit IStakeManager.UnstakeRequested(alice, 2 ether, T0 + MIN_DELAY);
        _unstake(alice, 2 ether);
        _assertAccount(alice, 3 ether, 0, 2 ether, "alice");
        vm.assertEq(stakes.accountOf(alice).unbondsAt, T0 + MIN_DELAY, "unbondsAt");
        vm.assertEq(address(stakes).balance, 5 ether, "nothing left yet");
    }

    function test_requestUnstake_restartsDelayForAll_succeeds() public {
        _stake(alice, 5 ether);
        _unstake(alice, 1 ether);
        vm.warp(T0 + MIN_DELAY - 1);
        vm.expectEmit(address(stakes));
        emit IStakeManager.UnstakeRequested(alice, 1 ether, T0 + 2 * MIN_DELAY - 1);
        _unstake(alice, 1 ether);
        vm.assertEq(stakes.accountOf(alice).unbonding, 2 ether, "unbonding");
        vm.warp(T0 + MIN_DELAY); // the first request would have matured here
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, T0 + 2 * MIN_DELAY - 1));
        vm.prank(alice);
        stakes.withdrawStake();
    }

    function test_requestUnstake_zero_reverts() public {
        _stake(alice, 1 ether);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        _unstake(alice, 0);
    }

    function test_requestUnstake_moreThanStaked_reverts() public {
        _stake(alice, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, 1 ether + 1, 1 ether)
        );
        _unstake(alice, 1 ether + 1);
    }

    function test_requestUnstake_nothingStaked_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, 1, 0));
        _unstake(alice, 1);
    }

    function test_requestUnstake_lockedCollateral_reverts() public {
        _stake(alice, 10 ether);
        _lock(alice, 6 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, 4 ether + 1, 4 ether)
        );
        _unstake(alice, 4 ether + 1);
        _unstake(alice, 4 ether);
        // Every wei left in `staked` is locked: nothing more can leave.
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, 1, 0));
        _unstake(alice, 1);
        _assertAccount(alice, 6 ether, 6 ether, 4 ether, "alice");
    }

    // ────────────────────────────────────── withdrawStake ──────────────────────────────────────

    function test_withdrawStake_afterDelay_succeeds() public {
        _stake(alice, 5 ether);
        _unstake(alice, 2 ether);
        vm.warp(T0 + MIN_DELAY);
        uint256 before = alice.balance;
        vm.expectEmit(address(stakes));
        emit IStakeManager.StakeWithdrawn(alice, 2 ether);
        vm.prank(alice);
        stakes.withdrawStake();
        vm.assertEq(alice.balance - before, 2 ether, "paid");
        _assertAccount(alice, 3 ether, 0, 0, "alice");
        vm.assertEq(stakes.accountOf(alice).unbondsAt, 0, "unbondsAt cleared");
        vm.assertEq(address(stakes).balance, 3 ether, "held");
    }

    function test_withdrawStake_oneSecondEarly_reverts() public {
        _stake(alice, 5 ether);
        _unstake(alice, 2 ether);
        vm.warp(T0 + MIN_DELAY - 1);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, T0 + MIN_DELAY));
        vm.prank(alice);
        stakes.withdrawStake();
    }

    function test_withdrawStake_nothingUnbonding_reverts() public {
        _stake(alice, 5 ether);
        vm.expectRevert(IStakeManager.NothingUnbonding.selector);
        vm.prank(alice);
        stakes.withdrawStake();
    }

    function test_withdrawStake_twice_reverts() public {
        _stake(alice, 5 ether);
        _unstake(alice, 5 ether);
        vm.warp(T0 + MIN_DELAY);
        vm.prank(alice);
        stakes.withdrawStake();
        vm.expectRevert(IStakeManager.NothingUnbonding.selector);
        vm.prank(alice);
        stakes.withdrawStake();
        vm.assertEq(address(stakes).balance, 0, "empty");
    }

    function test_withdrawStake_recipientRefusesEther_reverts() public {
        EtherRefuser refuser = new EtherRefuser();
        vm.deal(address(this), 1 ether);
        refuser.exec{value: 1 ether}(address(stakes), abi.encodeCall(StakeManager.stake, ()));
        refuser.exec(address(stakes), abi.encodeCall(StakeManager.requestUnstake, (1 ether)));
        vm.warp(T0 + MIN_DELAY);
        vm.expectRevert(IStakeManager.TransferFailed.selector);
        refuser.exec(address(stakes), abi.encodeCall(StakeManager.withdrawStake, ()));
        _assertAccount(address(refuser), 0, 0, 1 ether, "state unchanged");
    }

    /// @notice Attack: a staker re-enters withdrawStake from receive(). The guard stops the
    ///         reentrant call; the total paid is the unbonding stake once.
    function test_withdrawStake_reentrancySwallowed_reverts() public {
        ReentrantStaker attacker = new ReentrantStaker(stakes);
        attacker.setSwallow(true);
        _stake(bob, 10 ether); // someone else's stake the attacker would like to drain
        vm.deal(address(this), 3 ether);
        attacker.stake{value: 3 ether}();
        attacker.requestUnstake(3 ether);
        vm.warp(T0 + MIN_DELAY);
        attacker.withdrawStake();
        vm.assertEq(attacker.received(), 3 ether, "paid once");
        vm.assertEq(attacker.reentryAttempts(), 1, "re-entered");
        vm.assertEq(
            keccak256(attacker.reentryError()),
            keccak256(abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)),
            "guard error"
        );
        vm.assertEq(address(stakes).balance, 10 ether, "bob's stake untouched");
        _assertAccount(address(attacker), 0, 0, 0, "attacker");
    }

    function test_withdrawStake_reentrancyPropagated_reverts() public {
        ReentrantStaker attacker = new ReentrantStaker(stakes);
        _stake(bob, 10 ether);
        vm.deal(address(this), 3 ether);
        attacker.stake{value: 3 ether}();
        attacker.requestUnstake(3 ether);
        vm.warp(T0 + MIN_DELAY);
        // The reentrant call reverts, so the receive() reverts, so the transfer fails.
        vm.expectRevert(IStakeManager.TransferFailed.selector);
        attacker.withdrawStake();
        vm.assertEq(address(stakes).balance, 13 ether, "nothing left");
        _assertAccount(address(attacker), 0, 0, 3 ether, "attacker");
    }

    // ───────────────────────────────────── lockCollateral ──────────────────────────────────────

    function test_lockCollateral_succeeds() public {
        _stake(alice, 3 ether);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralLocked(alice, 2 ether);
        market.lock(alice, 2 ether, 3 ether);
        _assertAccount(alice, 3 ether, 2 ether, 0, "alice");
        market.lock(alice, 1 ether, 3 ether); // exactly the free stake
        _assertAccount(alice, 3 ether, 3 ether, 0, "all locked");
    }

    function test_lockCollateral_notMarket_reverts() public {
        _stake(alice, 3 ether);
        vm.expectRevert(IStakeManager.NotMarket.selector);
        vm.prank(stranger);
        stakes.lockCollateral(alice, 1 ether, 0);
        vm.expectRevert(IStakeManager.NotMarket.selector);
        vm.prank(admin);
        stakes.lockCollateral(alice, 1 ether, 0);
        vm.expectRevert(IStakeManager.NotMarket.selector);
        vm.prank(slasher);
        stakes.lockCollateral(alice, 1 ether, 0);
    }

    function test_lockCollateral_beforeBinding_reverts() public {
        StakeManager unbound = new StakeManager(admin, MIN_DELAY);
        vm.expectRevert(IStakeManager.NotMarket.selector);
        vm.prank(stranger);
        unbound.lockCollateral(alice, 1, 0);
    }

    function test_lockCollateral_zero_reverts() public {
        _stake(alice, 3 ether);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        market.lock(alice, 0, 0);
    }

    function test_lockCollateral_belowMinimum_reverts() public {
        _stake(alice, 3 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.StakeBelowMinimum.selector, 3 ether, 3 ether + 1)
        );
        market.lock(alice, 1, 3 ether + 1);
    }

    function test_lockCollateral_unbondingDoesNotCountTowardMinimum_reverts() public {
        _stake(alice, 3 ether);
        _unstake(alice, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeBelowMinimum.selector, 2 ether, 3 ether));
        market.lock(alice, 1, 3 ether);
    }

    function test_lockCollateral_insufficientFree_reverts() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, 1 ether + 1, 1 ether)
        );
        market.lock(alice, 1 ether + 1, 0);
    }

    // ──────────────────────────────────── releaseCollateral ────────────────────────────────────

    function test_releaseCollateral_succeeds() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralReleased(alice, 1.5 ether);
        market.release(alice, 1.5 ether);
        _assertAccount(alice, 3 ether, 0.5 ether, 0, "alice");
        market.release(alice, 0.5 ether);
        _assertAccount(alice, 3 ether, 0, 0, "released");
        vm.assertEq(address(stakes).balance, 3 ether, "no ETH moved");
    }

    function test_releaseCollateral_notMarket_reverts() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        vm.expectRevert(IStakeManager.NotMarket.selector);
        vm.prank(alice);
        stakes.releaseCollateral(alice, 2 ether);
    }

    function test_releaseCollateral_exceedsLocked_reverts() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.ExceedsLocked.selector, 2 ether + 1, 2 ether));
        market.release(alice, 2 ether + 1);
    }

    // ───────────────────────────────────── seizeCollateral ─────────────────────────────────────

    function test_seizeCollateral_succeeds() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralSeized(alice, 1.5 ether);
        market.seize(alice, 1.5 ether);
        _assertAccount(alice, 1.5 ether, 0.5 ether, 0, "alice");
        vm.assertEq(market.received(), 1.5 ether, "market paid");
        vm.assertEq(address(stakes).balance, 1.5 ether, "held");
    }

    function test_seizeCollateral_notMarket_reverts() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        vm.expectRevert(IStakeManager.NotMarket.selector);
        vm.prank(slasher);
        stakes.seizeCollateral(alice, 1 ether);
    }

    function test_seizeCollateral_exceedsLocked_reverts() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.ExceedsLocked.selector, 2 ether + 1, 2 ether));
        market.seize(alice, 2 ether + 1);
    }

    function test_seizeCollateral_marketRefusesEther_reverts() public {
        _stake(alice, 3 ether);
        _lock(alice, 2 ether);
        market.setRefuseEther(true);
        vm.expectRevert(IStakeManager.TransferFailed.selector);
        market.seize(alice, 1 ether);
        _assertAccount(alice, 3 ether, 2 ether, 0, "unchanged");
    }

    // ───────────────────────────────────────── slash ───────────────────────────────────────────

    function test_slash_fromFree_succeeds() public {
        _stake(alice, 3 ether);
        uint256 before = slasher.balance;
        vm.expectEmit(address(stakes));
        emit IStakeManager.Slashed(alice, slasher, 1 ether);
        vm.prank(slasher);
        stakes.slash(alice, 1 ether);
        _assertAccount(alice, 2 ether, 0, 0, "alice");
        vm.assertEq(slasher.balance - before, 1 ether, "slasher paid");
        vm.assertEq(address(stakes).balance, 2 ether, "held");
    }

    function test_slash_freeThenUnbonding_succeeds() public {
        _stake(alice, 10 ether);
        _lock(alice, 4 ether);
        _unstake(alice, 3 ether); // staked 7, locked 4, free 3, unbonding 3
        vm.prank(slasher);
        stakes.slash(alice, 5 ether); // 3 from free, 2 from unbonding
        _assertAccount(alice, 4 ether, 4 ether, 1 ether, "alice");
        vm.assertEq(slasher.balance, 5 ether, "slasher paid");
        vm.assertEq(address(stakes).balance, 5 ether, "held");
    }

    function test_slash_notSlasher_reverts() public {
        _stake(alice, 3 ether);
        vm.expectRevert(_unauthorized(stranger, slasherRole));
        vm.prank(stranger);
        stakes.slash(alice, 1 ether);
        // Neither the admin nor the market holds the role.
        vm.expectRevert(_unauthorized(admin, slasherRole));
        vm.prank(admin);
        stakes.slash(alice, 1 ether);
        vm.expectRevert(_unauthorized(address(market), slasherRole));
        vm.prank(address(market));
        stakes.slash(alice, 1 ether);
    }

    function test_slash_afterRoleRevoked_reverts() public {
        _stake(alice, 3 ether);
        vm.prank(admin);
        stakes.revokeRole(slasherRole, slasher);
        vm.expectRevert(_unauthorized(slasher, slasherRole));
        vm.prank(slasher);
        stakes.slash(alice, 1 ether);
    }

    function test_slash_zero_reverts() public {
        _stake(alice, 3 ether);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        vm.prank(slasher);
        stakes.slash(alice, 0);
    }

    function test_slash_lockedCollateralUntouchable_reverts() public {
        _stake(alice, 10 ether);
        _lock(alice, 6 ether);
        _unstake(alice, 1 ether); // free 3, unbonding 1, locked 6
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.SlashExceedsStake.selector, 4 ether + 1, 4 ether)
        );
        vm.prank(slasher);
        stakes.slash(alice, 4 ether + 1);
        vm.prank(slasher);
        stakes.slash(alice, 4 ether);
        _assertAccount(alice, 6 ether, 6 ether, 0, "only locked left");
    }

    function test_slash_slasherRefusesEther_reverts() public {
        EtherRefuser refuser = new EtherRefuser();
        vm.startPrank(admin);
        stakes.grantRole(slasherRole, address(refuser));
        vm.stopPrank();
        _stake(alice, 3 ether);
        vm.expectRevert(IStakeManager.TransferFailed.selector);
        refuser.exec(address(stakes), abi.encodeCall(StakeManager.slash, (alice, 1 ether)));
        _assertAccount(alice, 3 ether, 0, 0, "unchanged");
    }

    /// @notice Attack: request an unstake as soon as a challenge looks likely, hoping to leave
    ///         before the slash. The unbonding stake stays slashable for the whole delay.
    function test_slash_unstakingAheadOfSlash_succeeds() public {
        _stake(alice, 10 ether);
        _unstake(alice, 10 ether);
        // The dispute lasts as long as it possibly can.
        vm.warp(T0 + ProtocolLimits.MAX_CHALLENGE_WINDOW + ProtocolLimits.MAX_DISPUTE_DURATION);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, T0 + MIN_DELAY));
        vm.prank(alice);
        stakes.withdrawStake();
        vm.prank(slasher);
        stakes.slash(alice, 4 ether);
        _assertAccount(alice, 0, 0, 6 ether, "slashed while unbonding");
        vm.warp(T0 + MIN_DELAY);
        uint256 before = alice.balance;
        vm.prank(alice);
        stakes.withdrawStake();
        vm.assertEq(alice.balance - before, 6 ether, "only the rest leaves");
        vm.assertEq(address(stakes).balance, 0, "empty");
    }

    /// @notice Locked collateral can never be unstaked: a provider with everything locked cannot
    ///         start unbonding and cannot be reached by the slasher either; only the market moves it.
    function test_requestUnstake_lockedCollateralNeverUnstaked_reverts() public {
        _stake(alice, 5 ether);
        _lock(alice, 5 ether);
        vm.warp(T0 + MAX_DELAY + 1);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, 1, 0));
        _unstake(alice, 1);
        vm.expectRevert(IStakeManager.NothingUnbonding.selector);
        vm.prank(alice);
        stakes.withdrawStake();
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.SlashExceedsStake.selector, 1, 0));
        vm.prank(slasher);
        stakes.slash(alice, 1);
        market.release(alice, 5 ether);
        _unstake(alice, 5 ether);
    }

    // ─────────────────────────────────── setUnbondingDelay ─────────────────────────────────────

    function test_setUnbondingDelay_succeeds() public {
        vm.expectEmit(address(stakes));
        emit IStakeManager.UnbondingDelayUpdated(MIN_DELAY, MAX_DELAY);
        vm.prank(admin);
        stakes.setUnbondingDelay(MAX_DELAY);
        vm.assertEq(stakes.unbondingDelay(), MAX_DELAY, "delay");
        _stake(alice, 1 ether);
        _unstake(alice, 1 ether);
        vm.assertEq(stakes.accountOf(alice).unbondsAt, T0 + MAX_DELAY, "new delay applies");
    }

    function test_setUnbondingDelay_doesNotMoveExistingUnbonding_succeeds() public {
        _stake(alice, 1 ether);
        _unstake(alice, 1 ether);
        vm.prank(admin);
        stakes.setUnbondingDelay(MAX_DELAY);
        vm.assertEq(stakes.accountOf(alice).unbondsAt, T0 + MIN_DELAY, "unchanged");
        vm.warp(T0 + MIN_DELAY);
        vm.prank(alice);
        stakes.withdrawStake();
    }

    function test_setUnbondingDelay_tooShort_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakeManager.UnbondingDelayOutOfBounds.selector, MIN_DELAY - 1, MIN_DELAY, MAX_DELAY
            )
        );
        vm.prank(admin);
        stakes.setUnbondingDelay(MIN_DELAY - 1);
    }

    function test_setUnbondingDelay_tooLong_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakeManager.UnbondingDelayOutOfBounds.selector, MAX_DELAY + 1, MIN_DELAY, MAX_DELAY
            )
        );
        vm.prank(admin);
        stakes.setUnbondingDelay(MAX_DELAY + 1);
    }

    function test_setUnbondingDelay_zero_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.UnbondingDelayOutOfBounds.selector, 0, MIN_DELAY, MAX_DELAY)
        );
        vm.prank(admin);
        stakes.setUnbondingDelay(0);
    }

    function test_setUnbondingDelay_notAdmin_reverts() public {
        vm.expectRevert(_unauthorized(stranger, DEFAULT_ADMIN_ROLE));
        vm.prank(stranger);
        stakes.setUnbondingDelay(MAX_DELAY);
    }

    // ─────────────────────────────────────── bindMarket ────────────────────────────────────────

    function test_bindMarket_succeeds() public {
        StakeManager s = new StakeManager(admin, MIN_DELAY);
        vm.expectEmit(address(s));
        emit IStakeManager.MarketBound(bob);
        vm.prank(admin);
        s.bindMarket(bob);
        vm.assertEq(s.market(), bob, "bound");
    }

    function test_bindMarket_twice_reverts() public {
        vm.expectRevert(IStakeManager.MarketAlreadyBound.selector);
        vm.prank(admin);
        stakes.bindMarket(stranger);
        vm.expectRevert(IStakeManager.MarketAlreadyBound.selector);
        vm.prank(admin);
        stakes.bindMarket(address(market));
        vm.assertEq(stakes.market(), address(market), "still bound");
    }

    function test_bindMarket_zero_reverts() public {
        StakeManager s = new StakeManager(admin, MIN_DELAY);
        vm.expectRevert(IStakeManager.ZeroAddress.selector);
        vm.prank(admin);
        s.bindMarket(address(0));
    }

    function test_bindMarket_notAdmin_reverts() public {
        StakeManager s = new StakeManager(admin, MIN_DELAY);
        vm.expectRevert(_unauthorized(stranger, DEFAULT_ADMIN_ROLE));
        vm.prank(stranger);
        s.bindMarket(stranger);
    }

    // ───────────────────────────────────────── views ───────────────────────────────────────────

    function test_accountOf_unknownAccount_succeeds() public view {
        _assertAccount(stranger, 0, 0, 0, "empty");
        vm.assertEq(stakes.accountOf(stranger).unbondsAt, 0, "unbondsAt");
    }

    // ───────────────────────────────────────── fuzz ────────────────────────────────────────────

    function testFuzz_stake_accumulates(uint256 a, uint256 b) public {
        a = bound(a, 1, type(uint128).max / 2);
        b = bound(b, 1, type(uint128).max / 2);
        _stake(alice, a);
        _stake(alice, b);
        _assertAccount(alice, a + b, 0, 0, "alice");
        vm.assertEq(address(stakes).balance, a + b, "held");
    }

    function testFuzz_requestUnstake_withinFreeStake(uint256 staked, uint256 locked, uint256 amount) public {
        staked = bound(staked, 1, 1e30);
        locked = bound(locked, 0, staked);
        amount = bound(amount, 1, 2e30);
        _stake(alice, staked);
        if (locked != 0) _lock(alice, locked);
        uint256 free = staked - locked;
        if (amount > free) {
            vm.expectRevert(
                abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, amount, free)
            );
            _unstake(alice, amount);
            _assertAccount(alice, staked, locked, 0, "unchanged");
        } else {
            _unstake(alice, amount);
            _assertAccount(alice, staked - amount, locked, amount, "unstaked");
        }
        vm.assertEq(address(stakes).balance, staked, "held");
    }

    function testFuzz_withdrawStake_aroundUnbondingBoundary(uint256 amount, uint256 delay, uint256 wait)
        public
    {
        amount = bound(amount, 1, 1e30);
        delay = bound(delay, MIN_DELAY, MAX_DELAY);
        wait = bound(wait, 0, 2 * MAX_DELAY);
        vm.prank(admin);
        stakes.setUnbondingDelay(delay);
        _stake(alice, amount);
        _unstake(alice, amount);
        vm.warp(T0 + wait);
        uint256 before = alice.balance;
        if (wait < delay) {
            vm.expectRevert(abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, T0 + delay));
            vm.prank(alice);
            stakes.withdrawStake();
            vm.assertEq(alice.balance, before, "nothing paid");
            _assertAccount(alice, 0, 0, amount, "still unbonding");
        } else {
            vm.prank(alice);
            stakes.withdrawStake();
            vm.assertEq(alice.balance - before, amount, "paid");
            _assertAccount(alice, 0, 0, 0, "withdrawn");
            vm.assertEq(address(stakes).balance, 0, "empty");
        }
    }

    function testFuzz_slash_splitsFreeThenUnbonding(
        uint256 staked,
        uint256 locked,
        uint256 unbonding,
        uint256 amount
    ) public {
        staked = bound(staked, 1, 1e30);
        unbonding = bound(unbonding, 0, staked);
        locked = bound(locked, 0, staked - unbonding);
        _stake(alice, staked);
        if (locked != 0) _lock(alice, locked);
        if (unbonding != 0) _unstake(alice, unbonding);
        uint256 free = staked - unbonding - locked;
        uint256 available = free + unbonding;
        amount = bound(amount, 1, available + 1e18);
        if (amount > available) {
            vm.expectRevert(
                abi.encodeWithSelector(IStakeManager.SlashExceedsStake.selector, amount, available)
            );
            vm.prank(slasher);
            stakes.slash(alice, amount);
            return;
        }
        vm.prank(slasher);
        stakes.slash(alice, amount);
        uint256 fromFree = amount < free ? amount : free;
        _assertAccount(
            alice, staked - unbonding - fromFree, locked, unbonding - (amount - fromFree), "slashed"
        );
        vm.assertEq(slasher.balance, amount, "slasher paid");
        vm.assertEq(address(stakes).balance, staked - amount, "held");
        IStakeManager.Account memory a = stakes.accountOf(alice);
        vm.assertEq(address(stakes).balance, uint256(a.staked) + a.unbonding, "balance = staked + unbonding");
    }

    function testFuzz_lockCollateral_bounds(uint256 staked, uint256 minStake, uint256 amount) public {
        staked = bound(staked, 1, 1e30);
        minStake = bound(minStake, 0, 2e30);
        amount = bound(amount, 1, 2e30);
        _stake(alice, staked);
        if (staked < minStake) {
            vm.expectRevert(
                abi.encodeWithSelector(IStakeManager.StakeBelowMinimum.selector, staked, minStake)
            );
            market.lock(alice, amount, minStake);
        } else if (amount > staked) {
            vm.expectRevert(
                abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, amount, staked)
            );
            market.lock(alice, amount, minStake);
        } else {
            market.lock(alice, amount, minStake);
            _assertAccount(alice, staked, amount, 0, "locked");
        }
    }

    function testFuzz_releaseAndSeize_bounds(uint256 staked, uint256 locked, uint256 release, uint256 seize)
        public
    {
        staked = bound(staked, 1, 1e30);
        locked = bound(locked, 1, staked);
        release = bound(release, 0, locked + 1);
        _stake(alice, staked);
        _lock(alice, locked);
        if (release > locked) {
            vm.expectRevert(abi.encodeWithSelector(IStakeManager.ExceedsLocked.selector, release, locked));
            market.release(alice, release);
            release = 0;
        } else {
            market.release(alice, release);
        }
        uint256 stillLocked = locked - release;
        seize = bound(seize, 0, stillLocked + 1);
        if (seize > stillLocked) {
            vm.expectRevert(abi.encodeWithSelector(IStakeManager.ExceedsLocked.selector, seize, stillLocked));
            market.seize(alice, seize);
            seize = 0;
        } else {
            market.seize(alice, seize);
        }
        _assertAccount(alice, staked - seize, stillLocked - seize, 0, "after");
        vm.assertEq(market.received(), seize, "market paid");
        vm.assertEq(address(stakes).balance, staked - seize, "held");
    }

    function testFuzz_setUnbondingDelay_bounds(uint256 delay) public {
        delay = bound(delay, 0, 2 * MAX_DELAY);
        if (delay < MIN_DELAY || delay > MAX_DELAY) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IStakeManager.UnbondingDelayOutOfBounds.selector, delay, MIN_DELAY, MAX_DELAY
                )
            );
            vm.prank(admin);
            stakes.setUnbondingDelay(delay);
            vm.assertEq(stakes.unbondingDelay(), MIN_DELAY, "unchanged");
        } else {
            vm.prank(admin);
            stakes.setUnbondingDelay(delay);
            vm.assertEq(stakes.unbondingDelay(), delay, "set");
        }
    }

    /// @notice However the staker times its unstake relative to the slash, the slasher reaches
    ///         the unbonding stake until the delay is over.
    function testFuzz_slash_unstakeAheadOfSlash(uint256 amount, uint256 slashAt, uint256 slashAmount) public {
        amount = bound(amount, 1, 1e30);
        slashAt = bound(slashAt, 0, MIN_DELAY - 1);
        slashAmount = bound(slashAmount, 1, amount);
        _stake(alice, amount);
        _unstake(alice, amount);
        vm.warp(T0 + slashAt);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, T0 + MIN_DELAY));
        vm.prank(alice);
        stakes.withdrawStake();
        vm.prank(slasher);
        stakes.slash(alice, slashAmount);
        _assertAccount(alice, 0, 0, amount - slashAmount, "slashed");
    }
}
