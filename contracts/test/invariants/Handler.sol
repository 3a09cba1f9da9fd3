// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AuditPool} from "../../src/AuditPool.sol";
import {DataAvailability} from "../../src/DataAvailability.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {IDataAvailability} from "../../src/interfaces/IDataAvailability.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {ProtocolLimits} from "../../src/libraries/ProtocolLimits.sol";
import {ScriptedResolver} from "../utils/Fixture.sol";
import {StateBuilder} from "../utils/StateBuilder.sol";
import {AuditActions} from "./AuditActions.sol";
import {HandlerState} from "./HandlerState.sol";

/// @notice A dispute contract in miniature: holds the slasher role, slashes, and then either
///         forwards the ETH to a sink or keeps it.
contract Slasher {
    IStakeManager public immutable stakes;
    address public immutable sink;

    constructor(IStakeManager stakes_, address sink_) {
        stakes = stakes_;
        sink = sink_;
    }

    function slash(address account, uint256 amount, bool forward) external {
        stakes.slash(account, amount);
        if (forward) {
            (bool ok,) = sink.call{value: amount}("");
            require(ok, "forward failed");
        }
    }

    receive() external payable {
        require(msg.sender == address(stakes), "only stake manager");
    }
}

/// @notice Drives JobMarket and StakeManager with a fixed cast of requesters, providers and
///         validators, a resolver that decides both ways and a slasher. Anyone may demand a
///         step's data, which is then published (whole or in parts) through the demand's
///         publisher, one of two DataAvailability contracts that the admin swaps (or unsets), or
///         claimed unmet after its deadline: every worker's trace is made of one real state
///         (HandlerState). Every
///         action checks its preconditions and returns early instead of reverting, checks what
///         the contracts did against what they should have done, and records the result in
///         ghost state that the invariants of `Invariants.t.sol` assert (a revert in a handler
///         is discarded, since `fail_on_revert` is off, so nothing is asserted here directly).
contract Handler is AuditActions {
    JobMarket public immutable market;
    StakeManager public immutable stakes;
    ScriptedResolver public immutable resolver;
    Slasher public immutable slasher;
    /// @notice The market's publisher at the start, and another that the admin may set instead.
    DataAvailability public immutable availability;
    DataAvailability public immutable otherAvailability;
    address public immutable admin;
    address public immutable treasury;

    uint256 internal constant N_REQUESTERS = 3;
    uint256 internal constant N_PROVIDERS = 3;
    uint256 internal constant N_VALIDATORS = 3;
    uint256 internal constant MAX_WARP = 1 days;
    uint256 internal constant INITIAL_STAKE = 10 ether;

    address[] internal _requesters;
    address[] internal _providers;
    address[] internal _validators;
    /// @dev Everyone who can hold a market credit: requesters, providers, validators.
    address[] internal _actors;
    /// @dev Everyone who can hold stake: providers and validators.
    address[] internal _stakers;

    bytes internal _modelCid;
    bytes internal _datasetCid;
    bytes internal _resultCid;

    /// @dev The one state every worker's trace is made of (`h_i` = its hash for every `i`, see
    ///      HandlerState), so that any demanded step can be published: its entries and hash.
    bytes32[] internal _entries;
    bytes32 internal _stateHash;

    /// @dev Time and block as the handler last left them; re-applied at every entry, so they
    ///      survive between calls whatever the fuzzer does with the environment.
    uint256 public currentTime;
    uint256 public currentBlock;
    uint256 internal _nonce;

    // ─────────────────────────────────────────── ghost state ─────────────────────────────────────

    /// Per job: the worker was credited at finalize / the requester was credited a refund.
    mapping(uint256 jobId => bool) public ghost_paid;
    mapping(uint256 jobId => bool) public ghost_refunded;
    /// Jobs settled twice (paid twice, refunded twice, or paid and refunded).
    uint256 public ghost_doubleSettlements;

    /// ETH into and out of the market.
    uint256 public ghost_payments;
    uint256 public ghost_bondsPosted;
    uint256 public ghost_seized;
    uint256 public ghost_withdrawn;
    uint256 public ghost_feesWithdrawn;

    /// Every credit, by kind, and their sum.
    uint256 public ghost_workerPayouts;
    uint256 public ghost_refunds;
    uint256 public ghost_expiryPenalties;
    uint256 public ghost_challengerPayouts;
    uint256 public ghost_requesterCompensation;
    uint256 public ghost_bondsToWorkers;
    uint256 public ghost_demanderPayouts;
    uint256 public ghost_demandBondsToWorkers;
    uint256 public ghost_credited;
    /// Reward shares collected from conviction pools.
    uint256 public ghost_rewardsCollected;
    /// A reward claim or collection that moved the pool or credits other than specified.
    uint256 public ghost_rewardMismatches;
    uint256 public ghost_feesAccrued;
    /// Settlements whose credits, fees or escrow moved by other than the expected amounts.
    uint256 public ghost_creditMismatches;

    /// ETH into and out of the stake manager.
    uint256 public ghost_staked;
    uint256 public ghost_stakeWithdrawn;
    uint256 public ghost_slashed;
    uint256 public ghost_slashForwarded;

    /// Slashes: how many, how many took more than free + unbonding stake, how many moved other
    /// than exactly `amount` or touched locked stake, and how many refused a legal amount.
    uint256 public ghost_slashes;
    uint256 public ghost_slashesExceedingStake;
    uint256 public ghost_slashMismatches;
    uint256 public ghost_slashesWronglyRefused;
    /// Seizures: how many, how many took more than was locked, how many took other than the
    /// job's penalty or collateral or left the lock wrong.
    uint256 public ghost_seizures;
    uint256 public ghost_seizuresExceedingLocked;
    uint256 public ghost_seizureMismatches;

    /// Stake movements other than the expected ones; lock changes other than claim and release.
    uint256 public ghost_stakeMismatches;
    uint256 public ghost_lockMismatches;

    /// Reverts of calls whose preconditions the handler had checked, and the last one's data.
    uint256 public ghost_unexpectedReverts;
    bytes32 public lastUnexpectedRevertAction;
    bytes public lastUnexpectedRevertData;

    /// Calls that must have reverted (a forbidden transition, an unbond of locked stake) but did not.
    uint256 public ghost_illegalCallsSucceeded;

    /// The deadline the market announced to the resolver (and in `ChallengeOpened`) per dispute,
    /// and how often a dispute could be timed out before it, or could not be from it on.
    mapping(uint256 jobId => uint256) public ghost_announcedDeadline;
    uint256 public ghost_timeoutsBeforeAnnouncedDeadline;
    uint256 public ghost_timeoutsRefusedAfterAnnouncedDeadline;

    /// What the market should hold for each job: its payment while live, plus the bond of its
    /// open challenge or demand.
    mapping(uint256 jobId => uint256) public ghost_jobEscrow;

    /// A challenge commitment made by `commitOnly`, kept to claim a reward share with.
    struct Committed {
        address who;
        uint256 jobId;
        uint256 step;
        bytes32 claimed;
        bytes32 salt;
    }

    Committed[] internal _committed;
    /// The block of each kept commitment (the same index as `_committed`).
    uint256[] internal _commitBlock;
    /// The accounts that joined each job's reward pool, and whether each collected.
    mapping(uint256 jobId => address[]) internal _claimantsOf;
    mapping(uint256 jobId => mapping(address => uint256)) internal _claimState;
    /// Publications that met a demand with other than the window `max(windowEnd + elapsed,
    /// now + minChallengeWindow)`, left a demand behind, or moved a cursor other than expected.
    uint256 public ghost_demandMismatches;

    /// Coverage: successful calls per action.
    mapping(bytes32 action => uint256) public calls;

    constructor(
        JobMarket market_,
        StakeManager stakes_,
        ScriptedResolver resolver_,
        Slasher slasher_,
        DataAvailability[2] memory publishers_,
        AuditPool auditPool_,
        address admin_,
        address treasury_
    ) AuditActions(auditPool_, admin_) {
        market = market_;
        stakes = stakes_;
        resolver = resolver_;
        slasher = slasher_;
        availability = publishers_[0];
        otherAvailability = publishers_[1];
        admin = admin_;
        treasury = treasury_;
        for (uint256 i; i < N_REQUESTERS; i++) {
            address a = makeAddr(string.concat("requester", vm.toString(i)));
            _requesters.push(a);
            _actors.push(a);
        }
        for (uint256 i; i < N_PROVIDERS; i++) {
            address a = makeAddr(string.concat("provider", vm.toString(i)));
            _providers.push(a);
            _actors.push(a);
            _stakers.push(a);
        }
        for (uint256 i; i < N_VALIDATORS; i++) {
            address a = makeAddr(string.concat("validator", vm.toString(i)));
            _validators.push(a);
            _actors.push(a);
            _stakers.push(a);
        }
        // CIDs call the sha256 precompile: build them once, never between a prank and its call.
        _modelCid = abi.encodePacked(hex"01551220", sha256("model"));
        _datasetCid = abi.encodePacked(hex"01551220", sha256("dataset"));
        _resultCid = abi.encodePacked(hex"01551220", sha256("result"));
        _entries = StateBuilder.entries(HandlerState.state());
        _stateHash = StateBuilder.stateHash(_entries);
        currentTime = block.timestamp;
        currentBlock = block.number;
        // Every provider and validator starts staked, so that runs reach claims and challenges.
        for (uint256 i; i < _stakers.length; i++) {
            vm.deal(_stakers[i], INITIAL_STAKE);
            vm.prank(_stakers[i]);
            stakes.stake{value: INITIAL_STAKE}();
            ghost_staked += INITIAL_STAKE;
        }
    }

    modifier onlySelf() {
        require(msg.sender == address(this), "handler only");
        _;
    }

    modifier synced() {
        _sync();
        _;
    }

    function _sync() internal override {
        vm.warp(currentTime);
        vm.roll(currentBlock);
    }

    // ─────────────────────────────────────────── views for the invariants ────────────────────────

    function actorCount() external view returns (uint256) {
        return _actors.length;
    }

    function actorAt(uint256 i) external view returns (address) {
        return _actors[i];
    }

    function stakerCount() external view returns (uint256) {
        return _stakers.length;
    }

    function stakerAt(uint256 i) external view returns (address) {
        return _stakers[i];
    }

    function jobCount() public view override returns (uint256) {
        return market.nextJobId() - 1;
    }

    // ─────────────────────────────────────────── stake manager actions ───────────────────────────

    function stake(uint256 actorSeed, uint256 amount) external synced {
        address who = _staker(actorSeed);
        amount = bound(amount, 0.01 ether, 20 ether);
        _run(abi.encodeCall(this.execStake, (who, amount)), "stake");
    }

    /// @notice A staker unbonds part of its free stake, or a quarter of the time tries to unbond
    ///         more than its free stake (reaching into its locked collateral), which must fail.
    function requestUnstake(uint256 actorSeed, uint256 amount) external synced {
        address who = _staker(actorSeed);
        IStakeManager.Account memory a = stakes.accountOf(who);
        uint256 free = uint256(a.staked) - a.locked;
        if (amount % 4 == 1) {
            amount = free + bound(amount >> 2, 1, uint256(a.locked) + 1);
            vm.prank(who);
            try stakes.requestUnstake(amount) {
                ghost_illegalCallsSucceeded++;
            } catch {
                calls["requestUnstakeRefused"]++;
            }
            return;
        }
        if (free == 0) return;
        amount = bound(amount, 1, free);
        _run(abi.encodeCall(this.execRequestUnstake, (who, amount)), "requestUnstake");
    }

    function withdrawStake(uint256 actorSeed, bool wait) external synced {
        address who = _staker(actorSeed);
        IStakeManager.Account memory a = stakes.accountOf(who);
        if (a.unbonding == 0) return;
        if (block.timestamp < a.unbondsAt) {
            if (!wait) return;
            _warpTo(a.unbondsAt);
        }
        _run(abi.encodeCall(this.execWithdrawStake, (who)), "withdrawStake");
    }

    /// @notice The slasher slashes an account: a quarter of the time exactly all of its free and
    ///         unbonding stake, a quarter of the time more than that (reaching into locked stake,
    ///         or beyond all stake), which must be refused, and otherwise a part of it.
    function slash(uint256 actorSeed, uint256 amount, bool forward) external synced {
        address who = _staker(actorSeed);
        IStakeManager.Account memory before = stakes.accountOf(who);
        uint256 available = uint256(before.staked) - before.locked + before.unbonding;
        uint256 total = uint256(before.staked) + before.unbonding;
        uint256 mode = amount % 4;
        if (mode == 0) amount = available;
        else if (mode == 1) amount = available + bound(amount >> 2, 1, before.locked + 1);
        else amount = bound(amount >> 2, 1, available / 4 + 1);
        if (amount == 0) return;
        uint256 sinkBefore = slasher.sink().balance;
        uint256 keptBefore = address(slasher).balance;
        try slasher.slash(who, amount, forward) {
            IStakeManager.Account memory afterwards = stakes.accountOf(who);
            ghost_slashes++;
            ghost_slashed += amount;
            if (forward) ghost_slashForwarded += amount;
            if (amount > available) ghost_slashesExceedingStake++;
            uint256 totalAfter = uint256(afterwards.staked) + afterwards.unbonding;
            if (amount > total) ghost_slashesExceedingStake++;
            if (
                afterwards.locked != before.locked || total - totalAfter != amount
                    || slasher.sink().balance - sinkBefore != (forward ? amount : 0)
                    || address(slasher).balance - keptBefore != (forward ? 0 : amount)
            ) ghost_slashMismatches++;
            calls["slash"]++;
        } catch {
            if (amount <= available) ghost_slashesWronglyRefused++;
            calls["slashRefused"]++;
        }
    }

    // ─────────────────────────────────────────── market actions ──────────────────────────────────

    function post(
        uint256 actorSeed,
        uint256 payment,
        uint256 claimIn,
        uint256 deliverAfter,
        uint256 window,
        uint256 steps
    ) external synced {
        address who = _requesters[actorSeed % N_REQUESTERS];
        IJobMarket.MarketParams memory p = market.getParameters();
        payment = bound(payment, 1 gwei, 5 ether);
        uint256 claimDeadline = block.timestamp + bound(claimIn, 1, 3 days);
        uint256 deliveryDeadline = _min(
            claimDeadline + bound(deliverAfter, 1, 10 days), block.timestamp + ProtocolLimits.MAX_JOB_DURATION
        );
        uint256 maxWindow = _max(_min(p.maxChallengeWindow, 2 days), p.minChallengeWindow);
        // Every other job is a batch-inference one: the market treats both kinds alike, and the
        // illegal blob of `tryPublish` then meets the publisher's trace check, not its kind check.
        ++_nonce;
        IJobMarket.JobRequest memory r = IJobMarket.JobRequest({
            specHash: keccak256(abi.encode("spec", _nonce)),
            modelCid: _modelCid,
            datasetCid: _datasetCid,
            steps: uint32(bound(steps, 1, 1000)),
            verification: _nonce % 2 == 0
                ? IJobMarket.Verification.OptimisticInference
                : IJobMarket.Verification.Optimistic,
            claimDeadline: uint40(claimDeadline),
            deliveryDeadline: uint40(deliveryDeadline),
            challengeWindow: uint32(bound(window, p.minChallengeWindow, maxWindow))
        });
        _run(abi.encodeCall(this.execPost, (who, payment, r)), "post");
    }

    function cancel(uint256 jobSeed) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Posted);
        if (jobId == 0) return;
        _run(abi.encodeCall(this.execCancel, (jobId)), "cancel");
    }

    /// @notice The first provider, from a random one on, with the stake to claim a random
    ///         claimable job claims it.
    function claim(uint256 jobSeed, uint256 actorSeed) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Posted);
        if (jobId == 0) return;
        IJobMarket.Job memory j = market.getJob(jobId);
        if (block.timestamp > j.claimDeadline) return;
        IJobMarket.MarketParams memory p = market.getParameters();
        uint256 collateral = uint256(j.payment) * p.collateralBps / ProtocolLimits.BPS;
        for (uint256 i; i < N_PROVIDERS; i++) {
            address who = _providers[(actorSeed % N_PROVIDERS + i) % N_PROVIDERS];
            IStakeManager.Account memory a = stakes.accountOf(who);
            if (a.staked >= p.minProviderStake && a.staked - a.locked >= collateral) {
                _run(abi.encodeCall(this.execClaim, (jobId, who, collateral)), "claim");
                return;
            }
        }
    }

    function submit(uint256 jobSeed) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Claimed);
        if (jobId == 0) return;
        if (block.timestamp > market.getJob(jobId).deliveryDeadline) return;
        _run(abi.encodeCall(this.execSubmit, (jobId)), "submit");
    }

    function finalize(uint256 jobSeed, bool wait) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Submitted);
        if (jobId == 0) return;
        uint256 windowEnd = market.getJob(jobId).windowEnd;
        if (block.timestamp < windowEnd) {
            if (!wait) return;
            _warpTo(windowEnd);
        }
        _run(abi.encodeCall(this.execFinalize, (jobId)), "finalize");
    }

    function expire(uint256 jobSeed, bool wait) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Claimed);
        if (jobId == 0) return;
        uint256 deadline = market.getJob(jobId).deliveryDeadline;
        if (block.timestamp <= deadline) {
            if (!wait) return;
            _warpTo(deadline + 1);
        }
        _run(abi.encodeCall(this.execExpire, (jobId)), "expire");
    }

    /// @notice The first validator, from a random one on, with the free stake to challenge commits
    ///         to a challenge of a random submitted job; a block passes; it reveals with the bond.
    function commitAndChallenge(uint256 jobSeed, uint256 actorSeed, uint256 step, bytes32 claimed)
        external
        synced
    {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Submitted);
        if (jobId == 0) return;
        IJobMarket.Job memory j = market.getJob(jobId);
        if (block.timestamp >= j.windowEnd) return;
        // A batch-inference job has no dispute game: its challenges are refused (`tryIllegal`).
        if (j.verification != IJobMarket.Verification.Optimistic) return;
        address who;
        uint256 minStake = market.getParameters().minValidatorStake;
        for (uint256 i; i < N_VALIDATORS; i++) {
            address v = _validators[(actorSeed % N_VALIDATORS + i) % N_VALIDATORS];
            if (stakes.freeStakeOf(v) >= minStake) {
                who = v;
                break;
            }
        }
        if (who == address(0)) return;
        step = bound(step, 0, uint256(j.steps) - 1);
        if (claimed == bytes32(0)) claimed = keccak256("claimed");
        _run(abi.encodeCall(this.execChallenge, (jobId, who, step, claimed)), "challenge");
    }

    /// @notice The resolver decides an open dispute, either way, before its deadline.
    function resolve(uint256 jobSeed, bool workerLost) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Disputed);
        if (jobId == 0) return;
        if (block.timestamp >= ghost_announcedDeadline[jobId]) return;
        if (workerLost) _run(abi.encodeCall(this.execResolveWorkerLost, (jobId)), "resolveWorkerLost");
        else _run(abi.encodeCall(this.execChallengerLost, (jobId, false)), "resolveChallengerLost");
    }

    /// @notice Anyone times out a dispute from the deadline announced when it opened.
    function timeoutDispute(uint256 jobSeed, bool wait) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Disputed);
        if (jobId == 0) return;
        uint256 deadline = ghost_announcedDeadline[jobId];
        if (block.timestamp < deadline) {
            if (!wait) return;
            _warpTo(deadline);
        }
        (bool ok,) = address(this).call(abi.encodeCall(this.execChallengerLost, (jobId, true)));
        if (ok) calls["timeoutDispute"]++;
        else ghost_timeoutsRefusedAfterAnnouncedDeadline++;
    }

    // ─────────────────────────────────────────── reward actions ──────────────────────────────────

    /// @notice A random validator commits a challenge of a random job that is submitted,
    ///         disputed or demanded, without revealing it: a claim to a share of the reward if
    ///         the worker is convicted later.
    function commitOnly(uint256 jobSeed, uint256 actorSeed, uint256 step) external synced {
        IJobMarket.JobStatus[3] memory open =
            [IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Demanded];
        uint256 jobId = _findJob(jobSeed, open[jobSeed % 3]);
        if (jobId == 0) return;
        address who = _validators[actorSeed % N_VALIDATORS];
        Committed memory c = Committed({
            who: who,
            jobId: jobId,
            step: bound(step, 0, uint256(market.getJob(jobId).steps) - 1),
            claimed: keccak256(abi.encode("share", ++_nonce)),
            salt: keccak256(abi.encode("share salt", _nonce))
        });
        vm.prank(who);
        market.commitChallenge(jobId, keccak256(abi.encode(c.who, c.jobId, c.step, c.claimed, c.salt)));
        _committed.push(c);
        _commitBlock.push(block.number);
        calls["commitOnly"]++;
    }

    /// @notice A kept commitment is revealed to join its job's reward pool: it succeeds exactly
    ///         when there is a pool in its claim period, the commitment predates the conviction,
    ///         the account has not joined and holds the validator stake.
    function claimReward(uint256 seed) external synced {
        if (_committed.length == 0) return;
        uint256 i = seed % _committed.length;
        Committed memory c = _committed[i];
        IJobMarket.RewardPool memory pool = market.getRewardPool(c.jobId);
        bool allowed = pool.claimEnd != 0 && block.timestamp <= pool.claimEnd
            && _claimState[c.jobId][c.who] == 0
            && stakes.freeStakeOf(c.who) >= market.getParameters().minValidatorStake
            && c.who != market.getJob(c.jobId).worker;
        vm.prank(c.who);
        try market.claimReward(c.jobId, c.step, c.claimed, c.salt) {
            // A commitment from the conviction's block or later must be refused.
            if (!allowed || pool.convictedBlock <= _commitBlock[i]) ghost_illegalCallsSucceeded++;
            if (market.getRewardPool(c.jobId).claimants != pool.claimants + 1) ghost_rewardMismatches++;
            _claimantsOf[c.jobId].push(c.who);
            _claimState[c.jobId][c.who] = 1;
            calls["claimReward"]++;
        } catch {
            if (allowed && pool.convictedBlock > _commitBlock[i]) ghost_unexpectedReverts++;
            calls["claimRewardRefused"]++;
        }
        _committed[i] = _committed[_committed.length - 1];
        _commitBlock[i] = _commitBlock[_committed.length - 1];
        _committed.pop();
        _commitBlock.pop();
    }

    /// @notice A claimant of a random pool collects its share once the claim period is over.
    function collectReward(uint256 jobSeed, uint256 actorSeed) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Resolved);
        if (jobId == 0) return;
        address[] storage claimants = _claimantsOf[jobId];
        if (claimants.length == 0) return;
        address who = claimants[actorSeed % claimants.length];
        if (_claimState[jobId][who] != 1 || block.timestamp <= market.getRewardPool(jobId).claimEnd) return;
        _run(abi.encodeCall(this.execCollectReward, (jobId, who)), "collectReward");
    }

    function execCollectReward(uint256 jobId, address who) external onlySelf {
        IJobMarket.RewardPool memory pool = market.getRewardPool(jobId);
        uint256 share = pool.remaining / pool.claimants;
        uint256 creditBefore = market.creditOf(who);
        uint256 escrowBefore = market.totalEscrowed();
        vm.prank(who);
        market.collectReward(jobId);
        _claimState[jobId][who] = 2;
        ghost_jobEscrow[jobId] -= share;
        ghost_rewardsCollected += share;
        ghost_credited += share;
        IJobMarket.RewardPool memory afterwards = market.getRewardPool(jobId);
        if (
            market.creditOf(who) != creditBefore + share || market.totalEscrowed() != escrowBefore - share
                || afterwards.remaining != pool.remaining - share
                || afterwards.claimants != pool.claimants - 1
        ) ghost_rewardMismatches++;
    }

    /// @dev A conviction opened `jobId`'s pool of `reward` with `winner` as its first claimant.
    function _poolOpened(uint256 jobId, address winner, uint256 reward) internal {
        ghost_jobEscrow[jobId] = reward;
        _claimantsOf[jobId].push(winner);
        _claimState[jobId][winner] = 1;
        IJobMarket.RewardPool memory pool = market.getRewardPool(jobId);
        if (pool.remaining != reward || pool.claimants != 1 || pool.convictedBlock != block.number) {
            ghost_rewardMismatches++;
        }
    }

    // ─────────────────────────────────────────── availability actions ────────────────────────────

    /// @notice Someone other than the worker demands, with the exact bond, the state after a
    ///         random step (the final one included) of a random submitted job inside its window,
    ///         while the market has a publisher.
    function demandData(uint256 jobSeed, uint256 actorSeed, uint256 step) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Submitted);
        if (jobId == 0) return;
        IJobMarket.Job memory j = market.getJob(jobId);
        if (block.timestamp >= j.windowEnd || market.publisher() == address(0)) return;
        address who = _actors[actorSeed % _actors.length];
        if (who == j.worker) who = _actors[(actorSeed + 1) % _actors.length];
        step = bound(step, 0, j.steps);
        _run(abi.encodeCall(this.execDemand, (jobId, who, step)), "demandData");
    }

    /// @notice The worker, or someone else, publishes what is left of a random open demand's
    ///         state before its deadline through the demand's publisher (whichever the market has
    ///         now), in runs of 1, 2 or 4 rows, opening it first if nobody has: the demand is met.
    function meetDemand(uint256 jobSeed, uint256 log2Rows, bool byWorker) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Demanded);
        if (jobId == 0) return;
        if (block.timestamp > market.getDemand(jobId).deadline) return;
        _run(
            abi.encodeCall(this.execPublish, (jobId, uint8(log2Rows % 3), type(uint256).max, byWorker)),
            "meetDemand"
        );
    }

    /// @notice Like `meetDemand`, but publishes only some of the runs left, so the demand stays
    ///         open with its cursor further on (for a later publication or claim to pick up).
    function publishPart(uint256 jobSeed, uint256 count, uint256 log2Rows) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Demanded);
        if (jobId == 0) return;
        IJobMarket.DataDemand memory d = market.getDemand(jobId);
        if (block.timestamp > d.deadline) return;
        uint8 m = uint8(log2Rows % 3);
        IDataAvailability.Cursor memory c = HandlerState.cursorOf(jobId, d);
        (IDataAvailability.RowRun[] memory rs,,) = HandlerState.remainingRuns(c.tensor, c.row, m);
        if (rs.length < 2) return;
        count = bound(count, 1, rs.length - 1);
        _run(abi.encodeCall(this.execPublish, (jobId, m, count, true)), "publishPart");
    }

    /// @notice Anyone claims an unmet demand after its deadline, waiting for it if asked.
    function claimUnavailable(uint256 jobSeed, bool wait) external synced {
        uint256 jobId = _findJob(jobSeed, IJobMarket.JobStatus.Demanded);
        if (jobId == 0) return;
        uint256 deadline = market.getDemand(jobId).deadline;
        if (block.timestamp <= deadline) {
            if (!wait) return;
            _warpTo(deadline + 1);
        }
        _run(abi.encodeCall(this.execClaimUnavailable, (jobId)), "claimUnavailable");
    }

    /// @notice The admin sets the market's publisher to one of the two DataAvailability contracts
    ///         or to zero (no new demands). Open demands keep the publisher they were made with.
    function setPublisher(uint256 seed) external synced {
        address next = [address(availability), address(otherAvailability), address(0)][seed % 3];
        vm.prank(admin);
        market.setPublisher(next);
        calls["setPublisher"]++;
    }

    function withdraw(uint256 actorSeed) external synced {
        address who = _actors[actorSeed % _actors.length];
        if (market.creditOf(who) == 0) return;
        _run(abi.encodeCall(this.execWithdraw, (who)), "withdraw");
    }

    function withdrawFees() external synced {
        if (market.feesAccrued() == 0) return;
        _run(abi.encodeCall(this.execWithdrawFees, ()), "withdrawFees");
    }

    /// @notice Someone tries a transition that the job's status, the clock or the caller forbids:
    ///         cancelling a job that is not Posted or someone else's, finalizing or expiring or
    ///         timing out too early or in the wrong status, claiming or submitting out of turn,
    ///         deciding a dispute without being its resolver or after its deadline, or challenging
    ///         one's own result or without a commitment, demanding data as the worker, with the
    ///         wrong bond, outside a submitted job's window or with no publisher set, claiming a
    ///         demand unmet before its deadline, publishing without an open demand, after its
    ///         deadline or through another publisher than the demand's, or reporting a demand
    ///         met without being its publisher.
    ///         Each must revert; one that succeeds is counted.
    function tryIllegal(uint256 jobSeed, uint256 kind, uint256 actorSeed) external synced {
        uint256 n = jobCount();
        if (n == 0) return;
        uint256 jobId = 1 + jobSeed % n;
        IJobMarket.Job memory j = market.getJob(jobId);
        IJobMarket.JobStatus s = j.status;
        address requester = j.requester;
        address someone = _actors[actorSeed % _actors.length];
        kind = kind % 13;
        bool ok;
        if (kind == 0) {
            if (s == IJobMarket.JobStatus.Posted) return;
            vm.prank(requester);
            ok = _succeeds(address(market), abi.encodeCall(market.cancelJob, (jobId)));
        } else if (kind == 1) {
            if (s == IJobMarket.JobStatus.Posted && someone == requester) return;
            vm.prank(someone);
            ok = _succeeds(address(market), abi.encodeCall(market.cancelJob, (jobId)));
        } else if (kind == 2) {
            if (s == IJobMarket.JobStatus.Submitted && block.timestamp >= j.windowEnd) return;
            ok = _succeeds(address(market), abi.encodeCall(market.finalize, (jobId)));
        } else if (kind == 3) {
            if (s == IJobMarket.JobStatus.Claimed && block.timestamp > j.deliveryDeadline) return;
            ok = _succeeds(address(market), abi.encodeCall(market.expire, (jobId)));
        } else if (kind == 4) {
            bool disputed = s == IJobMarket.JobStatus.Disputed;
            if (disputed && block.timestamp >= ghost_announcedDeadline[jobId]) return;
            ok = _succeeds(address(market), abi.encodeCall(market.timeoutDispute, (jobId)));
            if (ok && disputed) {
                ghost_timeoutsBeforeAnnouncedDeadline++;
                return;
            }
        } else if (kind == 5) {
            vm.prank(someone);
            ok = _succeeds(
                address(market), abi.encodeCall(market.resolveDispute, (jobId, actorSeed % 2 == 0))
            );
        } else if (kind == 6) {
            if (s == IJobMarket.JobStatus.Posted && block.timestamp <= j.claimDeadline) return;
            address provider = _providers[actorSeed % N_PROVIDERS];
            vm.prank(provider);
            ok = _succeeds(address(market), abi.encodeCall(market.claimJob, (jobId)));
        } else if (kind == 7) {
            address worker = j.worker == address(0) ? _providers[actorSeed % N_PROVIDERS] : j.worker;
            bool legal = s == IJobMarket.JobStatus.Claimed && block.timestamp <= j.deliveryDeadline;
            if (legal && someone == worker) return;
            bytes memory resultCid = _resultCid;
            bytes32 root = HandlerState.uniformRoot(_stateHash, uint256(j.steps) + 1);
            bytes32[] memory proof = HandlerState.uniformProof(_stateHash, uint256(j.steps) + 1, j.steps);
            vm.prank(legal ? someone : worker);
            ok = _succeeds(
                address(market),
                abi.encodeCall(
                    market.submitResult, (jobId, j.steps, root, bytes32(0), _stateHash, proof, resultCid)
                )
            );
        } else if (kind == 9) {
            // The resolver decides a dispute at or after its deadline, when only a timeout may end it.
            if (s != IJobMarket.JobStatus.Disputed || block.timestamp < ghost_announcedDeadline[jobId]) {
                return;
            }
            ok = _succeeds(address(resolver), abi.encodeCall(resolver.decide, (jobId, actorSeed % 2 == 0)));
        } else if (kind == 10) {
            ok = _tryIllegalDemand(j, jobId, someone, actorSeed);
        } else if (kind == 11) {
            if (s == IJobMarket.JobStatus.Demanded && block.timestamp > market.getDemand(jobId).deadline) {
                return;
            }
            vm.prank(someone);
            ok = _succeeds(address(market), abi.encodeCall(market.claimUnavailable, (jobId)));
        } else if (kind == 12) {
            IJobMarket.DataDemand memory d = market.getDemand(jobId);
            DataAvailability through = actorSeed % 2 == 0 ? availability : otherAvailability;
            if (s == IJobMarket.JobStatus.Demanded && block.timestamp <= d.deadline) {
                // Open: only another publisher than the demand's, or the handler itself, is refused.
                through = d.publisher == address(availability) ? otherAvailability : availability;
            }
            ok = HandlerState.tryPublish(market, through, jobId, j.steps, d.step, _entries);
        } else {
            // The worker challenges its own result, or anyone challenges without a commitment.
            if (s != IJobMarket.JobStatus.Submitted || block.timestamp >= j.windowEnd) return;
            address challenger = actorSeed % 2 == 0 ? j.worker : someone;
            bytes32 salt = keccak256(abi.encode("illegal", ++_nonce));
            bytes32 claimed = keccak256("claimed");
            if (challenger == j.worker) {
                vm.prank(challenger);
                market.commitChallenge(jobId, keccak256(abi.encode(challenger, jobId, 0, claimed, salt)));
                _rollBlock();
            }
            uint256 bond = market.challengeBondOf(jobId);
            vm.deal(challenger, challenger.balance + bond);
            vm.prank(challenger);
            try market.challenge{value: bond}(jobId, 0, claimed, salt) {
                ok = true;
            } catch {}
        }
        if (ok) ghost_illegalCallsSucceeded++;
        else calls["illegalRefused"]++;
    }

    /// @dev A demand by the worker, with a bond off by one wei, or of a step past the last, when
    ///      the job is submitted and in its window and the market has a publisher; any demand
    ///      otherwise.
    function _tryIllegalDemand(IJobMarket.Job memory j, uint256 jobId, address who, uint256 seed)
        internal
        returns (bool ok)
    {
        uint256 value = market.challengeBondOf(jobId);
        uint256 step = seed % (uint256(j.steps) + 1);
        if (who == j.worker) who = _actors[(seed + 1) % _actors.length];
        bool open = j.status == IJobMarket.JobStatus.Submitted && block.timestamp < j.windowEnd;
        if (open && market.publisher() != address(0)) {
            uint256 variant = (seed >> 8) % 4;
            if (variant == 0) who = j.worker;
            else if (variant == 1) value += 1;
            else if (variant == 2) value -= 1;
            else step = uint256(j.steps) + 1 + (seed >> 16) % 3;
        }
        vm.deal(who, who.balance + value);
        vm.prank(who);
        try market.demandData{value: value}(jobId, step) {
            ok = true;
        } catch {}
    }

    function warp(uint256 secs) external synced {
        _warpTo(block.timestamp + bound(secs, 1, MAX_WARP));
        calls["warp"]++;
    }

    /// @notice The admin retunes the market within the protocol limits. Jobs in flight keep the
    ///         fee of their posting, the collateral, penalty and reward of their claim, and open
    ///         disputes the deadline they opened with; the checked executions verify each.
    function setParameters(uint256 seed) external synced {
        uint256 minWindow = _rand(seed, 4, ProtocolLimits.MIN_CHALLENGE_WINDOW, 1 days);
        uint256 reward = _rand(seed, 3, 0, ProtocolLimits.MAX_CHALLENGER_REWARD_BPS);
        IJobMarket.MarketParams memory p = IJobMarket.MarketParams({
            protocolFeeBps: uint16(_rand(seed, 0, 0, ProtocolLimits.MAX_PROTOCOL_FEE_BPS)),
            collateralBps: uint16(
                _rand(seed, 1, ProtocolLimits.MIN_COLLATERAL_BPS, ProtocolLimits.MAX_COLLATERAL_BPS)
            ),
            expiryPenaltyBps: uint16(
                _rand(seed, 2, ProtocolLimits.MIN_EXPIRY_PENALTY_BPS, ProtocolLimits.BPS - reward)
            ),
            challengerRewardBps: uint16(reward),
            minChallengeWindow: uint32(minWindow),
            maxChallengeWindow: uint32(_rand(seed, 5, minWindow, ProtocolLimits.MAX_CHALLENGE_WINDOW)),
            maxDisputeDuration: uint32(
                _rand(seed, 6, ProtocolLimits.MIN_DISPUTE_DURATION, ProtocolLimits.MAX_DISPUTE_DURATION)
            ),
            challengeBond: uint96(_rand(seed, 7, ProtocolLimits.MIN_CHALLENGE_BOND, 1 ether)),
            minProviderStake: uint96(_rand(seed, 8, 0, 1 ether)),
            minValidatorStake: uint96(_rand(seed, 9, 0, 1 ether))
        });
        _run(abi.encodeCall(this.execSetParameters, (p)), "setParameters");
    }

    // ─────────────────────────────────────────── checked executions ──────────────────────────────
    // Called by the actions through `_run` (a self-call, so a revert undoes the ghost updates with
    // the rest) and directly by `windDown`. Each one makes a call that its action's preconditions
    // say must succeed, and checks every balance the call should and should not have moved.

    function execStake(address who, uint256 amount) external onlySelf {
        vm.deal(who, who.balance + amount);
        IStakeManager.Account memory a = stakes.accountOf(who);
        vm.prank(who);
        stakes.stake{value: amount}();
        ghost_staked += amount;
        IStakeManager.Account memory afterwards = stakes.accountOf(who);
        if (afterwards.staked != a.staked + amount || afterwards.locked != a.locked) ghost_stakeMismatches++;
    }

    function execRequestUnstake(address who, uint256 amount) external onlySelf {
        IStakeManager.Account memory a = stakes.accountOf(who);
        vm.prank(who);
        stakes.requestUnstake(amount);
        IStakeManager.Account memory afterwards = stakes.accountOf(who);
        if (
            afterwards.staked != a.staked - amount || afterwards.unbonding != a.unbonding + amount
                || afterwards.locked != a.locked
                || afterwards.unbondsAt != block.timestamp + stakes.unbondingDelay()
        ) ghost_stakeMismatches++;
    }

    function execWithdrawStake(address who) external onlySelf {
        IStakeManager.Account memory a = stakes.accountOf(who);
        uint256 balanceBefore = who.balance;
        vm.prank(who);
        stakes.withdrawStake();
        ghost_stakeWithdrawn += a.unbonding;
        IStakeManager.Account memory afterwards = stakes.accountOf(who);
        if (
            who.balance != balanceBefore + a.unbonding || afterwards.unbonding != 0
                || afterwards.staked != a.staked || afterwards.locked != a.locked
        ) ghost_stakeMismatches++;
    }

    function execPost(address who, uint256 payment, IJobMarket.JobRequest calldata r) external onlySelf {
        vm.deal(who, who.balance + payment);
        uint256 escrowBefore = market.totalEscrowed();
        uint256 expectedId = market.nextJobId();
        // The dispute game admits the spec of a training job before it can be posted.
        if (r.verification == IJobMarket.Verification.Optimistic) resolver.admit(r.specHash, r.steps);
        vm.prank(who);
        uint256 jobId = market.postJob{value: payment}(r);
        ghost_payments += payment;
        ghost_jobEscrow[jobId] = payment;
        IJobMarket.Job memory j = market.getJob(jobId);
        if (
            jobId != expectedId || market.totalEscrowed() != escrowBefore + payment || j.payment != payment
                || j.requester != who || j.status != IJobMarket.JobStatus.Posted
        ) ghost_creditMismatches++;
    }

    function execCancel(uint256 jobId) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        uint256 creditBefore = market.creditOf(j.requester);
        uint256 escrowBefore = market.totalEscrowed();
        vm.prank(j.requester);
        market.cancelJob(jobId);
        _markRefunded(jobId);
        ghost_jobEscrow[jobId] = 0;
        ghost_refunds += j.payment;
        ghost_credited += j.payment;
        if (
            market.creditOf(j.requester) != creditBefore + j.payment
                || market.totalEscrowed() != escrowBefore - j.payment
        ) ghost_creditMismatches++;
    }

    function execClaim(uint256 jobId, address who, uint256 collateral) external onlySelf {
        IStakeManager.Account memory a = stakes.accountOf(who);
        IJobMarket.MarketParams memory p = market.getParameters();
        vm.prank(who);
        market.claimJob(jobId);
        IStakeManager.Account memory afterwards = stakes.accountOf(who);
        IJobMarket.Job memory j = market.getJob(jobId);
        if (afterwards.locked != a.locked + collateral || afterwards.staked != a.staked) {
            ghost_lockMismatches++;
        }
        if (j.worker != who || j.collateral != collateral) ghost_lockMismatches++;
        // The worker's penalty and reward rates are those in force at the claim, whatever follows.
        if (j.expiryPenaltyBps != p.expiryPenaltyBps || j.challengerRewardBps != p.challengerRewardBps) {
            ghost_lockMismatches++;
        }
    }

    function execSubmit(uint256 jobId) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        bytes memory resultCid = _resultCid;
        // Every state of the trace is the handler's one state, so any step can be published.
        bytes32 traceRoot = HandlerState.uniformRoot(_stateHash, uint256(j.steps) + 1);
        bytes32[] memory finalProof = HandlerState.uniformProof(_stateHash, uint256(j.steps) + 1, j.steps);
        bytes32 auditRoot = auditRootOf(jobId, j.steps);
        vm.prank(j.worker);
        market.submitResult(jobId, j.steps, traceRoot, auditRoot, _stateHash, finalProof, resultCid);
        if (market.getJob(jobId).auditRoot != auditRoot) ghost_auditMismatches++;
    }

    /// @notice Pays the worker; the fee goes to the protocol, less the audit share that an
    ///         audited job sends the audit pool (`AuditActions._auditSplit`).
    function execFinalize(uint256 jobId) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        uint256 fee = uint256(j.payment) * j.feeBps / ProtocolLimits.BPS;
        uint256 payout = j.payment - fee;
        (, uint256 toFees) = _auditSplit(j, fee);
        uint256 creditBefore = market.creditOf(j.worker);
        uint256 feesBefore = market.feesAccrued();
        uint256 escrowBefore = market.totalEscrowed();
        uint256 poolBefore = address(auditPool).balance;
        IStakeManager.Account memory a = stakes.accountOf(j.worker);
        market.finalize(jobId);
        _markPaid(jobId);
        _checkAuditFunded(jobId, j, fee, poolBefore);
        ghost_jobEscrow[jobId] = 0;
        ghost_workerPayouts += payout;
        ghost_credited += payout;
        ghost_feesAccrued += toFees;
        if (
            market.creditOf(j.worker) != creditBefore + payout || market.feesAccrued() != feesBefore + toFees
                || market.totalEscrowed() != escrowBefore - j.payment
        ) ghost_creditMismatches++;
        IStakeManager.Account memory afterwards = stakes.accountOf(j.worker);
        if (afterwards.locked != a.locked - j.collateral || afterwards.staked != a.staked) {
            ghost_lockMismatches++;
        }
    }

    function execExpire(uint256 jobId) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        uint256 penalty = uint256(j.collateral) * j.expiryPenaltyBps / ProtocolLimits.BPS;
        uint256 creditBefore = market.creditOf(j.requester);
        uint256 escrowBefore = market.totalEscrowed();
        IStakeManager.Account memory a = stakes.accountOf(j.worker);
        market.expire(jobId);
        _markRefunded(jobId);
        ghost_jobEscrow[jobId] = 0;
        ghost_refunds += j.payment;
        ghost_expiryPenalties += penalty;
        ghost_credited += uint256(j.payment) + penalty;
        if (
            market.creditOf(j.requester) != creditBefore + j.payment + penalty
                || market.totalEscrowed() != escrowBefore - j.payment
        ) ghost_creditMismatches++;
        _checkSeizure(j.worker, a, j.collateral, penalty);
    }

    function execChallenge(uint256 jobId, address who, uint256 step, bytes32 claimed) external onlySelf {
        bytes32 salt = keccak256(abi.encode("salt", ++_nonce));
        bytes32 commitment = keccak256(abi.encode(who, jobId, step, claimed, salt));
        vm.prank(who);
        market.commitChallenge(jobId, commitment);
        _rollBlock();

        uint256 bond = market.challengeBondOf(jobId);
        vm.deal(who, who.balance + bond);
        uint256 escrowBefore = market.totalEscrowed();
        vm.prank(who);
        market.challenge{value: bond}(jobId, step, claimed, salt);
        ghost_bondsPosted += bond;
        ghost_jobEscrow[jobId] += bond;
        IJobMarket.Challenge memory c = market.getChallenge(jobId);
        if (
            market.totalEscrowed() != escrowBefore + bond || c.bond != bond || c.challenger != who
                || c.resolver != address(resolver)
        ) ghost_creditMismatches++;
        ghost_announcedDeadline[jobId] = resolver.lastDeadline();
        if (
            resolver.lastJobId() != jobId
                || resolver.lastDeadline() != block.timestamp + market.getParameters().maxDisputeDuration
        ) ghost_creditMismatches++;
    }

    function execResolveWorkerLost(uint256 jobId) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        IJobMarket.Challenge memory c = market.getChallenge(jobId);
        uint256 reward = uint256(j.collateral) * j.challengerRewardBps / ProtocolLimits.BPS;
        uint256 challengerCredit = c.bond;
        uint256 requesterCredit = uint256(j.payment) + j.collateral - reward;
        uint256 challengerBefore = market.creditOf(c.challenger);
        uint256 requesterBefore = market.creditOf(j.requester);
        uint256 escrowBefore = market.totalEscrowed();
        IStakeManager.Account memory a = stakes.accountOf(j.worker);
        resolver.decide(jobId, true);
        _markRefunded(jobId);
        _poolOpened(jobId, c.challenger, reward);
        ghost_refunds += j.payment;
        ghost_challengerPayouts += challengerCredit;
        ghost_requesterCompensation += uint256(j.collateral) - reward;
        ghost_credited += challengerCredit + requesterCredit;
        if (
            market.creditOf(c.challenger) != challengerBefore + challengerCredit
                || market.creditOf(j.requester) != requesterBefore + requesterCredit
                || market.totalEscrowed() != escrowBefore - j.payment - c.bond + reward
        ) ghost_creditMismatches++;
        _checkSeizure(j.worker, a, j.collateral, j.collateral);
    }

    /// @notice The resolver rules for the worker, or anyone times the dispute out: the bond goes
    ///         to the worker and the job returns to Submitted for the rest of its window.
    function execChallengerLost(uint256 jobId, bool timedOut) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        IJobMarket.Challenge memory c = market.getChallenge(jobId);
        uint256 creditBefore = market.creditOf(j.worker);
        uint256 escrowBefore = market.totalEscrowed();
        IStakeManager.Account memory a = stakes.accountOf(j.worker);
        if (timedOut && block.timestamp < ghost_announcedDeadline[jobId]) {
            ghost_timeoutsBeforeAnnouncedDeadline++;
        }
        if (timedOut) market.timeoutDispute(jobId);
        else resolver.decide(jobId, false);
        ghost_bondsToWorkers += c.bond;
        ghost_credited += c.bond;
        ghost_jobEscrow[jobId] -= c.bond;
        IJobMarket.Job memory afterwards = market.getJob(jobId);
        if (
            market.creditOf(j.worker) != creditBefore + c.bond
                || market.totalEscrowed() != escrowBefore - c.bond
                || afterwards.status != IJobMarket.JobStatus.Submitted
                || afterwards.windowEnd != uint256(j.windowEnd) + (block.timestamp - c.openedAt)
        ) ghost_creditMismatches++;
        IStakeManager.Account memory accountAfter = stakes.accountOf(j.worker);
        if (accountAfter.locked != a.locked || accountAfter.staked != a.staked) ghost_lockMismatches++;
    }

    function execDemand(uint256 jobId, address who, uint256 step) external onlySelf {
        IJobMarket.MarketParams memory p = market.getParameters();
        uint256 bond = market.challengeBondOf(jobId);
        vm.deal(who, who.balance + bond);
        uint256 escrowBefore = market.totalEscrowed();
        vm.prank(who);
        market.demandData{value: bond}(jobId, step);
        ghost_bondsPosted += bond;
        ghost_jobEscrow[jobId] += bond;
        IJobMarket.DataDemand memory d = market.getDemand(jobId);
        if (market.totalEscrowed() != escrowBefore + bond || d.bond != bond || d.demander != who) {
            ghost_creditMismatches++;
        }
        IDataAvailability.Cursor memory c = HandlerState.cursorOf(jobId, d);
        if (
            d.step != step || d.openedAt != block.timestamp
                || d.deadline
                    != block.timestamp + uint256(p.maxDisputeDuration) * market.AVAILABILITY_PERCENT() / 100
                || d.publisher != market.publisher() || c.tensor != 0 || c.row != 0
                || c.stateHash != bytes32(0) || market.getJob(jobId).status != IJobMarket.JobStatus.Demanded
        ) ghost_demandMismatches++;
    }

    /// @notice Opens the demanded state of `jobId` on the demand's publisher if nobody has, then
    ///         publishes at most `maxRuns` of the runs left (`2^log2Rows` rows each): all of them
    ///         meet the demand, fewer move its cursor.
    function execPublish(uint256 jobId, uint8 log2Rows, uint256 maxRuns, bool byWorker) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        IJobMarket.DataDemand memory d = market.getDemand(jobId);
        IDataAvailability.Cursor memory c = HandlerState.cursorOf(jobId, d);
        address sender = byWorker ? j.worker : _actors[(jobId + c.row) % _actors.length];
        if (c.stateHash == bytes32(0)) _open(jobId, j.steps, d, sender);
        (IDataAvailability.RowRun[] memory rs, uint256[] memory tensorAfter, uint256[] memory rowAfter) =
            HandlerState.remainingRuns(c.tensor, c.row, log2Rows);
        bool meets = rs.length <= maxRuns;
        uint256 n = meets ? rs.length : maxRuns;
        assembly ("memory-safe") {
            mstore(rs, n)
        }
        // The worker's credit and the escrow before.
        uint256[2] memory before = [market.creditOf(j.worker), market.totalEscrowed()];
        vm.prank(sender);
        IDataAvailability(d.publisher).publishRows(jobId, _entries, rs);
        if (meets) {
            _checkMet(jobId, j, d, before);
            return;
        }
        _checkPart(jobId, j.worker, d, [tensorAfter[n - 1], rowAfter[n - 1]], before);
    }

    /// @dev A publication moved the cursor of `jobId`'s demand `d` to `cursorAt` (tensor, row) and
    ///      nothing else.
    function _checkPart(
        uint256 jobId,
        address worker,
        IJobMarket.DataDemand memory d,
        uint256[2] memory cursorAt,
        uint256[2] memory before
    ) internal {
        IDataAvailability.Cursor memory left = IDataAvailability(d.publisher).cursorOf(jobId);
        if (
            market.getJob(jobId).status != IJobMarket.JobStatus.Demanded || left.tensor != cursorAt[0]
                || left.row != cursorAt[1] || left.demandOpenedAt != d.openedAt
                || left.stateHash != _stateHash || market.creditOf(worker) != before[0]
                || market.totalEscrowed() != before[1]
        ) ghost_demandMismatches++;
    }

    /// @dev Opens the state of demand `d` on its publisher (`h_step`, and `h_{step+1}` or zero
    ///      after the last step), as `sender`.
    function _open(uint256 jobId, uint256 steps, IJobMarket.DataDemand memory d, address sender) internal {
        uint256 leaves = steps + 1;
        bool last = d.step + 1 == leaves;
        bytes32[] memory proof = HandlerState.uniformProof(_stateHash, leaves, d.step);
        bytes32[] memory nextProof =
            last ? new bytes32[](0) : HandlerState.uniformProof(_stateHash, leaves, d.step + 1);
        vm.prank(sender);
        IDataAvailability(d.publisher)
            .openState(jobId, _entries, proof, last ? bytes32(0) : _stateHash, nextProof);
        if (HandlerState.cursorOf(jobId, d).stateHash != _stateHash) ghost_demandMismatches++;
    }

    /// @dev A publication met demand `d` of job `j`: the bond went to the worker, the job is back
    ///      in Submitted with the window `max(windowEnd + elapsed, now + minChallengeWindow)`,
    ///      and the demand is gone (`before`: the worker's credit and the escrow before).
    function _checkMet(
        uint256 jobId,
        IJobMarket.Job memory j,
        IJobMarket.DataDemand memory d,
        uint256[2] memory before
    ) internal {
        ghost_demandBondsToWorkers += d.bond;
        ghost_credited += d.bond;
        ghost_jobEscrow[jobId] -= d.bond;
        if (market.creditOf(j.worker) != before[0] + d.bond || market.totalEscrowed() != before[1] - d.bond) {
            ghost_creditMismatches++;
        }
        uint256 windowEnd = _max(
            uint256(j.windowEnd) + (block.timestamp - d.openedAt),
            block.timestamp + market.getParameters().minChallengeWindow
        );
        IJobMarket.Job memory afterwards = market.getJob(jobId);
        IJobMarket.DataDemand memory left = market.getDemand(jobId);
        // The publisher deleted its cursor: the next demand starts from nothing.
        IDataAvailability.Cursor memory c = IDataAvailability(d.publisher).cursorOf(jobId);
        if (
            afterwards.status != IJobMarket.JobStatus.Submitted || afterwards.windowEnd != windowEnd
                || left.demander != address(0) || left.bond != 0 || left.publisher != address(0)
                || c.demandOpenedAt != 0 || c.stateHash != bytes32(0)
        ) ghost_demandMismatches++;
    }

    /// @notice The demand's deadline passed: the worker loses as in a lost dispute, with the
    ///         demander in the challenger's place.
    function execClaimUnavailable(uint256 jobId) external onlySelf {
        IJobMarket.Job memory j = market.getJob(jobId);
        IJobMarket.DataDemand memory d = market.getDemand(jobId);
        uint256 reward = uint256(j.collateral) * j.challengerRewardBps / ProtocolLimits.BPS;
        uint256 demanderCredit = d.bond;
        uint256 requesterCredit = uint256(j.payment) + j.collateral - reward;
        uint256 demanderBefore = market.creditOf(d.demander);
        uint256 requesterBefore = market.creditOf(j.requester);
        uint256 escrowBefore = market.totalEscrowed();
        IStakeManager.Account memory a = stakes.accountOf(j.worker);
        market.claimUnavailable(jobId);
        _markRefunded(jobId);
        _poolOpened(jobId, d.demander, reward);
        ghost_refunds += j.payment;
        ghost_demanderPayouts += demanderCredit;
        ghost_requesterCompensation += uint256(j.collateral) - reward;
        ghost_credited += demanderCredit + requesterCredit;
        // The demander may be the requester: compare the sum when they are the same account.
        bool same = d.demander == j.requester;
        if (
            (same && market.creditOf(j.requester) != requesterBefore + demanderCredit + requesterCredit)
                || (!same && market.creditOf(d.demander) != demanderBefore + demanderCredit)
                || (!same && market.creditOf(j.requester) != requesterBefore + requesterCredit)
                || market.totalEscrowed() != escrowBefore - j.payment - d.bond + reward
        ) ghost_creditMismatches++;
        if (
            market.getJob(jobId).status != IJobMarket.JobStatus.Resolved
                || market.getDemand(jobId).demander != address(0)
        ) ghost_demandMismatches++;
        _checkSeizure(j.worker, a, j.collateral, j.collateral);
    }

    function execWithdraw(address who) external onlySelf {
        uint256 amount = market.creditOf(who);
        uint256 balanceBefore = who.balance;
        vm.prank(who);
        market.withdraw();
        ghost_withdrawn += amount;
        if (who.balance != balanceBefore + amount || market.creditOf(who) != 0) ghost_creditMismatches++;
    }

    function execWithdrawFees() external onlySelf {
        uint256 amount = market.feesAccrued();
        uint256 balanceBefore = treasury.balance;
        vm.prank(treasury);
        market.withdrawFees();
        ghost_feesWithdrawn += amount;
        if (treasury.balance != balanceBefore + amount || market.feesAccrued() != 0) {
            ghost_creditMismatches++;
        }
    }

    function execSetParameters(IJobMarket.MarketParams calldata p) external onlySelf {
        vm.prank(admin);
        market.setParameters(p);
    }

    // ─────────────────────────────────────────── wind-down ───────────────────────────────────────

    /// @notice Drives every live job to a terminal state, has every party withdraw its credits and
    ///         the fees, unstakes everything, waits out the unbonding delay and withdraws the stake.
    ///         Not a fuzz target: the invariant test calls it from `afterInvariant`. Reverts if any
    ///         step that must succeed fails.
    function windDown() external synced {
        uint256 n = jobCount();
        for (uint256 jobId = 1; jobId <= n; jobId++) {
            _settle(jobId);
        }
        _windDownAudits();
        for (uint256 jobId = 1; jobId <= n; jobId++) {
            address[] storage claimants = _claimantsOf[jobId];
            if (claimants.length == 0) continue;
            _warpTo(_max(block.timestamp, market.getRewardPool(jobId).claimEnd + 1));
            for (uint256 i; i < claimants.length; i++) {
                if (_claimState[jobId][claimants[i]] == 1) this.execCollectReward(jobId, claimants[i]);
            }
            require(market.getRewardPool(jobId).remaining == 0, "a reward pool not emptied by its claimants");
        }
        for (uint256 i; i < _actors.length; i++) {
            if (market.creditOf(_actors[i]) != 0) this.execWithdraw(_actors[i]);
        }
        if (market.feesAccrued() != 0) this.execWithdrawFees();
        for (uint256 i; i < _stakers.length; i++) {
            address who = _stakers[i];
            require(stakes.accountOf(who).locked == 0, "collateral still locked after every job settled");
            uint256 free = stakes.freeStakeOf(who);
            if (free != 0) this.execRequestUnstake(who, free);
        }
        _warpTo(block.timestamp + stakes.unbondingDelay());
        for (uint256 i; i < _stakers.length; i++) {
            if (stakes.accountOf(_stakers[i]).unbonding != 0) this.execWithdrawStake(_stakers[i]);
        }
    }

    /// @dev Settles one job whatever its status, warping past whatever deadline stands in the way.
    function _settle(uint256 jobId) internal {
        while (true) {
            IJobMarket.Job memory j = market.getJob(jobId);
            if (j.status == IJobMarket.JobStatus.Posted) {
                this.execCancel(jobId);
            } else if (j.status == IJobMarket.JobStatus.Claimed) {
                if (block.timestamp <= j.deliveryDeadline) this.execSubmit(jobId);
                else this.execExpire(jobId);
            } else if (j.status == IJobMarket.JobStatus.Submitted) {
                _warpTo(j.windowEnd);
                this.execFinalize(jobId);
            } else if (j.status == IJobMarket.JobStatus.Disputed) {
                _warpTo(ghost_announcedDeadline[jobId]);
                try this.execChallengerLost(jobId, true) {}
                catch {
                    ghost_timeoutsRefusedAfterAnnouncedDeadline++;
                    _warpTo(block.timestamp + ProtocolLimits.MAX_DISPUTE_DURATION);
                    this.execChallengerLost(jobId, true);
                }
            } else if (j.status == IJobMarket.JobStatus.Demanded) {
                // Half the demands are met where they still can be, the rest claimed unmet.
                uint256 deadline = market.getDemand(jobId).deadline;
                if (jobId % 2 == 0 && block.timestamp <= deadline) {
                    this.execPublish(jobId, uint8(jobId % 3), type(uint256).max, true);
                } else {
                    _warpTo(deadline + 1);
                    this.execClaimUnavailable(jobId);
                }
            } else {
                return;
            }
        }
    }

    // ─────────────────────────────────────────── ghost helpers ───────────────────────────────────

    /// @dev After a seizure of `expected` from `worker`'s collateral `collateral`, given its
    ///      account `before`: the seizure must not exceed what was locked, must be exactly the
    ///      expected amount, and the whole collateral must have left the lock.
    function _checkSeizure(
        address worker,
        IStakeManager.Account memory before,
        uint256 collateral,
        uint256 expected
    ) internal {
        IStakeManager.Account memory afterwards = stakes.accountOf(worker);
        uint256 seized = uint256(before.staked) - afterwards.staked;
        if (seized != 0) ghost_seizures++;
        ghost_seized += seized;
        if (seized > before.locked || seized > collateral) ghost_seizuresExceedingLocked++;
        if (
            seized != expected || afterwards.locked != before.locked - collateral
                || afterwards.unbonding != before.unbonding
        ) ghost_seizureMismatches++;
    }

    function _markPaid(uint256 jobId) internal {
        if (ghost_paid[jobId] || ghost_refunded[jobId]) ghost_doubleSettlements++;
        ghost_paid[jobId] = true;
    }

    function _markRefunded(uint256 jobId) internal {
        if (ghost_paid[jobId] || ghost_refunded[jobId]) ghost_doubleSettlements++;
        ghost_refunded[jobId] = true;
    }

    /// @dev Runs a checked execution as a self-call; a revert is unexpected, since every action
    ///      checks the preconditions of its call first, and is counted rather than propagated.
    function _run(bytes memory data, bytes32 action) internal override {
        (bool ok, bytes memory ret) = address(this).call(data);
        if (ok) {
            calls[action]++;
        } else {
            ghost_unexpectedReverts++;
            lastUnexpectedRevertAction = action;
            lastUnexpectedRevertData = ret;
        }
    }

    // ─────────────────────────────────────────── helpers ─────────────────────────────────────────

    /// @dev Whether a call (made under the caller's prank) succeeded.
    function _succeeds(address target, bytes memory data) internal returns (bool ok) {
        (ok,) = target.call(data);
    }

    function _staker(uint256 seed) internal view override returns (address) {
        return _stakers[seed % _stakers.length];
    }

    /// @dev The first job in `status` at or after a pseudo-random start, or zero.
    function _findJob(uint256 seed, IJobMarket.JobStatus status) internal view override returns (uint256) {
        uint256 n = jobCount();
        if (n == 0) return 0;
        uint256 start = seed % n;
        for (uint256 i; i < n; i++) {
            uint256 jobId = 1 + (start + i) % n;
            if (market.getJob(jobId).status == status) return jobId;
        }
        return 0;
    }

    function _warpTo(uint256 timestamp) internal override {
        if (timestamp <= currentTime) return;
        currentTime = timestamp;
        vm.warp(timestamp);
    }

    function _rollBlock() internal {
        currentBlock++;
        vm.roll(currentBlock);
    }

    /// @dev A value in `[min, max]` drawn from `seed` and `salt`.
    function _rand(uint256 seed, uint256 salt, uint256 min, uint256 max) internal pure returns (uint256) {
        return bound(uint256(keccak256(abi.encode(seed, salt))), min, max);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function _max(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a : b;
    }
}
