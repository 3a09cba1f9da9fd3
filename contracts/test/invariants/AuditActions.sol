// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AuditPool} from "../../src/AuditPool.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IAuditPool} from "../../src/interfaces/IAuditPool.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {EtherRefuser} from "../utils/EtherRefuser.sol";
import {MerkleBuilder} from "../utils/MerkleBuilder.sol";
import {Test} from "../utils/Test.sol";

/// @notice The invariant handler's audit actions (a base of `Handler`, in a file of its own):
///         stakers commit to audits of jobs in their window, honestly (a step's real op-trace
///         root) or not, reveal them once the job is finalized, collect their shares or release
///         unclaimed pools to the requester, try to copy someone else's opening, and the admin
///         swaps the market's auditor between the pool, none, and one whose `fund` always fails.
///         Three of every four jobs are submitted with a real audit tree (`auditRootOf`), whose
///         audit leaves are distinct per job and step. Like the rest of the handler, every
///         action checks its preconditions, expects success exactly when the rules allow it, and
///         records what happened in ghost state for `Invariants.t.sol`.
abstract contract AuditActions is Test {
    /// @notice The market's audit pool, and an auditor whose `fund` always reverts.
    AuditPool public immutable auditPool;
    address public immutable brokenAuditor;
    JobMarket private immutable _market;
    IStakeManager private immutable _stakes;
    address private immutable _admin;

    /// Per job: wei the market funded the pool with; wei paid out of it (to auditors and to
    /// the requester); of that, what its auditors collected.
    mapping(uint256 jobId => uint256) public ghost_auditFunded;
    mapping(uint256 jobId => uint256) public ghost_auditPaid;
    mapping(uint256 jobId => uint256) public ghost_auditCollected;
    uint256 public ghost_auditFundedTotal;
    uint256 public ghost_auditPaidTotal;
    /// Audit shares that stayed fees because the auditor's `fund` failed.
    uint256 public ghost_auditSharesToFees;
    /// Collections by an auditor that had collected its share of that job before.
    uint256 public ghost_auditDoubleCollects;
    /// Audit calls that moved ETH, statuses or counters other than specified.
    uint256 public ghost_auditMismatches;
    /// Audit calls that the rules forbid but that succeeded.
    uint256 public ghost_auditIllegalSucceeded;

    /// A commitment made by `commitAudit` and not revealed yet.
    struct Audit {
        address who;
        uint256 jobId;
        uint256 step;
        bytes32 auditLeaf;
    }

    Audit[] internal _audits;
    /// Jobs whose pool the market funded, and who revealed in each and collected.
    uint256[] internal _fundedJobs;
    mapping(uint256 jobId => address[]) internal _revealersOf;
    mapping(uint256 jobId => mapping(address => bool)) internal _auditCollected;

    constructor(AuditPool pool_, address admin_) {
        auditPool = pool_;
        _market = JobMarket(payable(address(pool_.market())));
        _stakes = _market.stakeManager();
        _admin = admin_;
        brokenAuditor = address(new EtherRefuser());
    }

    // ─────────────────────────────────────────── the handler's ───────────────────────────────────

    modifier auditSynced() {
        _sync();
        _;
    }

    modifier auditSelfOnly() {
        require(msg.sender == address(this), "handler only");
        _;
    }

    /// @dev Re-applies the handler's clock (its `synced`).
    function _sync() internal virtual;

    function jobCount() public view virtual returns (uint256);
    function _findJob(uint256 seed, IJobMarket.JobStatus status) internal view virtual returns (uint256);
    function _run(bytes memory data, bytes32 action) internal virtual;
    function _warpTo(uint256 timestamp) internal virtual;
    function _staker(uint256 seed) internal view virtual returns (address);

    // ─────────────────────────────────────────── audit trees ─────────────────────────────────────

    /// @notice The audit leaf of step `step` of job `jobId`'s worker (made up, distinct).
    function auditLeafOf(uint256 jobId, uint256 step) public pure returns (bytes32) {
        return keccak256(abi.encode("op trace", jobId, step));
    }

    /// @notice The audit root a worker submits for job `jobId` of `steps` steps: zero for every
    ///         fourth job (not audited), else the root over `auditLeafOf(jobId, 0 .. steps-1)`.
    function auditRootOf(uint256 jobId, uint256 steps) public pure returns (bytes32) {
        if (jobId % 4 == 0) return bytes32(0);
        return MerkleBuilder.root(_auditLeaves(jobId, steps));
    }

    function _auditLeaves(uint256 jobId, uint256 steps) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](steps);
        for (uint256 i; i < steps; ++i) {
            leaves[i] = auditLeafOf(jobId, i);
        }
    }

    // ─────────────────────────────────────────── actions ─────────────────────────────────────────

    /// @notice A staker (possibly the job's worker) commits to an audit of a random step of a
    ///         random job in its window, honestly or with a guessed audit leaf (which it will
    ///         fail to reveal). It must succeed exactly when the job has an audit root, the
    ///         staker is not its worker, holds the validator stake and has not committed to it.
    function commitAudit(uint256 jobSeed, uint256 actorSeed, uint256 step, bool honest) external auditSynced {
        IJobMarket.JobStatus[3] memory open =
            [IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Demanded];
        uint256 jobId;
        for (uint256 k; k < 3 && jobId == 0; k++) {
            jobId = _findJob(jobSeed, open[(jobSeed % 3 + k) % 3]);
        }
        if (jobId == 0) return;
        IJobMarket.Job memory j = _market.getJob(jobId);
        address who = _staker(actorSeed);
        step = bound(step, 0, uint256(j.steps) - 1);
        bytes32 auditLeaf = honest ? auditLeafOf(jobId, step) : keccak256(abi.encode("a guess", jobId, step));
        bool allowed = j.auditRoot != bytes32(0) && who != j.worker
            && _stakes.freeStakeOf(who) >= _market.getParameters().minValidatorStake
            && auditPool.auditStatusOf(jobId, who) == IAuditPool.AuditStatus.None;
        if (allowed) {
            _run(abi.encodeCall(this.execCommitAudit, (jobId, who, step, auditLeaf)), "commitAudit");
            return;
        }
        bytes32 c = keccak256(abi.encode(who, jobId, step, auditLeaf));
        vm.prank(who);
        try auditPool.commitAudit(jobId, c) {
            ghost_auditIllegalSucceeded++;
        } catch {}
    }

    /// @notice A kept commitment is revealed with its real proof: it must succeed exactly when
    ///         the pool is funded, its reveal period runs and the commitment was honest.
    ///         Commitments that can never open any more are dropped.
    function revealAudit(uint256 seed) external auditSynced {
        if (_audits.length == 0) return;
        uint256 i = seed % _audits.length;
        Audit memory a = _audits[i];
        IAuditPool.Pool memory p = auditPool.getPool(a.jobId);
        IJobMarket.Job memory j = _market.getJob(a.jobId);
        bool honest = a.auditLeaf == auditLeafOf(a.jobId, a.step);
        if (p.revealEnd != 0 && block.timestamp <= p.revealEnd && honest) {
            _run(abi.encodeCall(this.execRevealAudit, (a.jobId, a.who, a.step, a.auditLeaf)), "revealAudit");
            _dropAudit(i);
            return;
        }
        bytes32[] memory proof = MerkleBuilder.proof(_auditLeaves(a.jobId, j.steps), a.step);
        vm.prank(a.who);
        try auditPool.revealAudit(a.jobId, a.step, a.auditLeaf, proof) {
            ghost_auditIllegalSucceeded++;
        } catch {}
        // Still waiting for its job to finalize, it may open later; otherwise never.
        bool waiting = p.revealEnd == 0 && j.status != IJobMarket.JobStatus.Resolved;
        if (!waiting) _dropAudit(i);
    }

    /// @notice Someone tries to take an honest auditor's place in a funded pool: another staker
    ///         reveals the auditor's opening (with or without having committed its commitment
    ///         bytes before the job finalized, which it cannot do any more), or the auditor
    ///         reveals its root as another step's or with a tampered proof. Each must revert.
    function tryCopyAudit(uint256 seed, uint256 actorSeed) external auditSynced {
        if (_audits.length == 0) return;
        Audit memory a = _audits[seed % _audits.length];
        if (auditPool.getPool(a.jobId).revealEnd == 0) return;
        uint256 steps = _market.getJob(a.jobId).steps;
        bytes32[] memory proof = MerkleBuilder.proof(_auditLeaves(a.jobId, steps), a.step);
        address who = a.who;
        uint256 step = a.step;
        uint256 kind = (seed >> 8) % 3;
        if (kind == 0) {
            who = _staker(actorSeed);
            if (who == a.who) return;
            // Someone who also committed honestly to this step may reveal it: not a copy.
            if (
                auditPool.commitmentOf(a.jobId, who) == keccak256(abi.encode(who, a.jobId, step, a.auditLeaf))
            ) {
                return;
            }
        } else if (kind == 1) {
            if (steps < 2) return;
            step = (step + 1) % steps;
        } else {
            if (proof.length == 0) return;
            proof[actorSeed % proof.length] ^= bytes32(uint256(1));
        }
        vm.prank(who);
        try auditPool.revealAudit(a.jobId, step, a.auditLeaf, proof) {
            ghost_auditIllegalSucceeded++;
        } catch {}
    }

    /// @notice A revealer of a random funded pool collects its share once the reveal period is
    ///         over (waiting for it if asked); before it, or a second time, it must be refused.
    function collectAudit(uint256 seed, uint256 actorSeed, bool wait) external auditSynced {
        if (_fundedJobs.length == 0) return;
        uint256 jobId = _fundedJobs[seed % _fundedJobs.length];
        address[] storage revealers = _revealersOf[jobId];
        if (revealers.length == 0) return;
        address who = revealers[actorSeed % revealers.length];
        uint256 revealEnd = auditPool.getPool(jobId).revealEnd;
        if (wait) _warpTo(revealEnd + 1);
        if (block.timestamp > revealEnd && !_auditCollected[jobId][who]) {
            _run(abi.encodeCall(this.execCollectAudit, (jobId, who)), "collectAudit");
            return;
        }
        vm.prank(who);
        try auditPool.collectAudit(jobId) {
            if (_auditCollected[jobId][who]) ghost_auditDoubleCollects++;
            else ghost_auditIllegalSucceeded++;
        } catch {}
    }

    /// @notice Anyone releases a random funded pool to its requester: it must succeed exactly
    ///         after the reveal period, when nobody revealed and it was not released before.
    function releaseAudit(uint256 seed, bool wait) external auditSynced {
        if (_fundedJobs.length == 0) return;
        uint256 jobId = _fundedJobs[seed % _fundedJobs.length];
        IAuditPool.Pool memory p = auditPool.getPool(jobId);
        if (wait) _warpTo(uint256(p.revealEnd) + 1);
        if (block.timestamp > p.revealEnd && p.revealed == 0 && p.amount != 0) {
            _run(abi.encodeCall(this.execReleaseAudit, (jobId)), "releaseAudit");
            return;
        }
        try auditPool.releaseAudit(jobId) {
            ghost_auditIllegalSucceeded++;
        } catch {}
    }

    /// @notice The admin sets the market's auditor: the pool (half the time), none, or one whose
    ///         `fund` always fails. Jobs finalized meanwhile send their share accordingly.
    function setAuditor(uint256 seed) external auditSynced {
        address next = [address(auditPool), address(auditPool), address(0), brokenAuditor][seed % 4];
        vm.prank(_admin);
        _market.setAuditor(next);
    }

    // ─────────────────────────────────────────── checked executions ──────────────────────────────

    function execCommitAudit(uint256 jobId, address who, uint256 step, bytes32 auditLeaf)
        external
        auditSelfOnly
    {
        bytes32 c = keccak256(abi.encode(who, jobId, step, auditLeaf));
        if (auditPool.auditCommitment(who, jobId, step, auditLeaf) != c) ghost_auditMismatches++;
        vm.prank(who);
        auditPool.commitAudit(jobId, c);
        _audits.push(Audit({who: who, jobId: jobId, step: step, auditLeaf: auditLeaf}));
        if (
            auditPool.commitmentOf(jobId, who) != c
                || auditPool.auditStatusOf(jobId, who) != IAuditPool.AuditStatus.Committed
        ) ghost_auditMismatches++;
    }

    function execRevealAudit(uint256 jobId, address who, uint256 step, bytes32 auditLeaf)
        external
        auditSelfOnly
    {
        IAuditPool.Pool memory before = auditPool.getPool(jobId);
        bytes32[] memory proof = MerkleBuilder.proof(_auditLeaves(jobId, _market.getJob(jobId).steps), step);
        vm.prank(who);
        auditPool.revealAudit(jobId, step, auditLeaf, proof);
        _revealersOf[jobId].push(who);
        IAuditPool.Pool memory afterwards = auditPool.getPool(jobId);
        if (
            afterwards.revealed != before.revealed + 1 || afterwards.amount != before.amount
                || auditPool.auditStatusOf(jobId, who) != IAuditPool.AuditStatus.Revealed
        ) ghost_auditMismatches++;
    }

    /// @notice Collects `who`'s share: `amount / revealed`, the last revealer the rest.
    function execCollectAudit(uint256 jobId, address who) external auditSelfOnly {
        IAuditPool.Pool memory p = auditPool.getPool(jobId);
        uint256 share = p.amount / p.revealed;
        if (p.collected + 1 == p.revealed) share = p.amount - share * (p.revealed - 1);
        uint256[2] memory before = [who.balance, address(auditPool).balance];
        vm.prank(who);
        auditPool.collectAudit(jobId);
        _auditCollected[jobId][who] = true;
        ghost_auditPaid[jobId] += share;
        ghost_auditCollected[jobId] += share;
        ghost_auditPaidTotal += share;
        if (
            who.balance != before[0] + share || address(auditPool).balance != before[1] - share
                || auditPool.getPool(jobId).collected != p.collected + 1
                || auditPool.auditStatusOf(jobId, who) != IAuditPool.AuditStatus.Collected
        ) ghost_auditMismatches++;
    }

    function execReleaseAudit(uint256 jobId) external auditSelfOnly {
        uint256 amount = auditPool.getPool(jobId).amount;
        address requester = _market.getJob(jobId).requester;
        uint256[2] memory before = [requester.balance, address(auditPool).balance];
        auditPool.releaseAudit(jobId);
        ghost_auditPaid[jobId] += amount;
        ghost_auditPaidTotal += amount;
        if (
            requester.balance != before[0] + amount || address(auditPool).balance != before[1] - amount
                || auditPool.getPool(jobId).amount != 0
        ) ghost_auditMismatches++;
    }

    // ─────────────────────────────────────────── finalization ────────────────────────────────────

    /// @dev What finalizing job `j` with fee `fee` sends the audit pool and leaves in the fees.
    function _auditSplit(IJobMarket.Job memory j, uint256 fee)
        internal
        view
        returns (uint256 toPool, uint256 toFees)
    {
        address auditor = _market.auditor();
        if (j.auditRoot == bytes32(0) || auditor == address(0)) return (0, fee);
        uint256 audit = fee * 50 / 100;
        if (auditor == address(auditPool)) return (audit, fee - audit);
        return (0, fee);
    }

    /// @dev After the market finalized job `jobId` (`j` as it was, `fee` its whole fee), given
    ///      the pool's balance before: the pool was funded with its share and a reveal period of
    ///      40% of the dispute duration, or (no audit root, no auditor, a broken one) not at all.
    function _checkAuditFunded(uint256 jobId, IJobMarket.Job memory j, uint256 fee, uint256 poolBefore)
        internal
    {
        (uint256 toPool,) = _auditSplit(j, fee);
        IAuditPool.Pool memory p = auditPool.getPool(jobId);
        if (address(auditPool).balance != poolBefore + toPool) ghost_auditMismatches++;
        address auditor = _market.auditor();
        if (j.auditRoot != bytes32(0) && auditor == brokenAuditor) ghost_auditSharesToFees += fee * 50 / 100;
        if (j.auditRoot == bytes32(0) || auditor != address(auditPool)) {
            if (p.revealEnd != 0) ghost_auditMismatches++;
            return;
        }
        uint256 revealEnd = block.timestamp + uint256(_market.getParameters().maxDisputeDuration) * 40 / 100;
        if (p.amount != toPool || p.revealEnd != revealEnd || p.revealed != 0) ghost_auditMismatches++;
        ghost_auditFunded[jobId] = toPool;
        ghost_auditFundedTotal += toPool;
        _fundedJobs.push(jobId);
    }

    // ─────────────────────────────────────────── wind-down ───────────────────────────────────────

    /// @dev After every job settled: waits out every reveal period, has every revealer collect
    ///      and releases every pool nobody revealed in, so the pool ends empty.
    function _windDownAudits() internal {
        for (uint256 k; k < _fundedJobs.length; k++) {
            uint256 jobId = _fundedJobs[k];
            IAuditPool.Pool memory p = auditPool.getPool(jobId);
            _warpTo(uint256(p.revealEnd) + 1);
            address[] storage revealers = _revealersOf[jobId];
            for (uint256 i; i < revealers.length; i++) {
                if (!_auditCollected[jobId][revealers[i]]) this.execCollectAudit(jobId, revealers[i]);
            }
            if (p.revealed == 0 && p.amount != 0) this.execReleaseAudit(jobId);
        }
        require(address(auditPool).balance == 0, "the audit pool not emptied");
    }

    function _dropAudit(uint256 i) internal {
        _audits[i] = _audits[_audits.length - 1];
        _audits.pop();
    }
}
