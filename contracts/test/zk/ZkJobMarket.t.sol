// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {ProtocolLimits} from "../../src/libraries/ProtocolLimits.sol";
import {MnistMlpVerifier} from "../../src/zk/MnistMlpVerifier.sol";
import {EtherRefuser} from "../utils/EtherRefuser.sol";
import {Fixture} from "../utils/Fixture.sol";

/// @notice The market's zk mode with the committed MNIST verifier and its proof, made in Rust
///         (crates/zk/tests/vectors/MnistMlpVerifier.json): the proof is bound to job 1 of this
///         fixture's market on this chain and to the worker 0x4242…42, with the job commitment
///         and the output commitment of that vector.
contract ZkJobMarketTest is Fixture {
    uint8 internal constant CIRCUIT = 1;
    uint256 internal constant R = ProtocolLimits.SNARK_SCALAR_FIELD;

    event GasUsed(uint256 post, uint256 submit, uint256 calldataGas, uint256 total);

    MnistMlpVerifier internal verifier;
    address internal worker;
    bytes32 internal cJob;
    bytes32 internal cOut;
    uint256[8] internal proof;
    bytes internal logitsCid;

    function setUp() public override {
        super.setUp();
        verifier = new MnistMlpVerifier();
        string memory json =
            vm.readFile(string.concat(vm.projectRoot(), "/../crates/zk/tests/vectors/MnistMlpVerifier.json"));
        uint256[] memory a = vm.parseJsonUintArray(json, ".a");
        uint256[] memory b = vm.parseJsonUintArray(json, ".b");
        uint256[] memory c = vm.parseJsonUintArray(json, ".c");
        uint256[] memory input = vm.parseJsonUintArray(json, ".input");
        proof = [a[0], a[1], b[0], b[1], b[2], b[3], c[0], c[1]];
        cJob = bytes32(input[0]);
        cOut = bytes32(input[1]);
        // The proof is bound to job 1 of this fixture's market on this chain, and its worker.
        worker = vm.parseJsonAddress(json, ".binding.worker");
        vm.assertEq(
            vm.parseJsonAddress(json, ".binding.market"),
            address(market),
            "the vector is for another market address: regenerate it (crates/zk/examples/zk_verifier.rs)"
        );
        vm.assertEq(vm.parseJsonUint(json, ".binding.chainId"), block.chainid, "the vector's chain");
        vm.assertEq(vm.parseJsonUint(json, ".binding.jobId"), 1, "the vector's job");
        vm.assertEq(
            input[2],
            uint256(keccak256(abi.encode(block.chainid, address(market), uint256(1), worker))) >> 8,
            "the vector's binding input"
        );
        logitsCid = cid("logits");
        vm.deal(worker, 1 ether); // a worker pays its gas: its account exists
        vm.prank(admin);
        market.registerZkCircuit(CIRCUIT, address(verifier));
    }

    function zkRequest() internal view returns (IJobMarket.JobRequest memory r) {
        r = request();
        r.verification = IJobMarket.Verification.Zk;
        r.steps = 1;
        r.challengeWindow = 0;
        r.specHash = cJob;
    }

    function postZk() internal returns (uint256 jobId) {
        IJobMarket.JobRequest memory r = zkRequest();
        vm.prank(requester);
        jobId = market.postZkJob{value: PAYMENT}(r, CIRCUIT);
    }

    function submitAs(address who, uint256 jobId, bytes32 out, uint256[8] memory p) internal {
        vm.prank(who);
        market.submitZkResult(jobId, out, logitsCid, p);
    }

    function invalidProof(uint256 jobId, bytes32 out) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IJobMarket.InvalidProof.selector, jobId, out);
    }

    // ─────────────────────────────────────── registry ───────────────────────────────────────

    function test_registerZkCircuit_onceAndByTheAdminOnly() public {
        vm.assertEq(market.zkVerifierOf(CIRCUIT), address(verifier), "market.zkVerifierOf(CIRCUIT)");
        MnistMlpVerifier other = new MnistMlpVerifier();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ZkCircuitTaken.selector, CIRCUIT));
        market.registerZkCircuit(CIRCUIT, address(other));
        vm.assertEq(market.zkVerifierOf(CIRCUIT), address(verifier), "a circuit is never replaced");

        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0)
            )
        );
        market.registerZkCircuit(2, address(other));

        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownZkCircuit.selector, uint8(0)));
        market.registerZkCircuit(0, address(other));
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoCode.selector, stranger));
        market.registerZkCircuit(2, stranger);
        vm.expectEmit(address(market));
        emit IJobMarket.ZkCircuitRegistered(2, address(other));
        market.registerZkCircuit(2, address(other));
        vm.stopPrank();
    }

    // ─────────────────────────────────────── posting ────────────────────────────────────────

    function test_postZkJob_storesTheCommitmentAndCircuit() public {
        IJobMarket.JobRequest memory r = zkRequest();
        vm.expectEmit(address(market));
        emit IJobMarket.JobPosted(1, requester, PAYMENT, r);
        vm.expectEmit(address(market));
        emit IJobMarket.ZkJobPosted(1, CIRCUIT);
        vm.prank(requester);
        uint256 jobId = market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Posted), "uint256(job.status)");
        vm.assertEq(
            uint256(job.verification), uint256(IJobMarket.Verification.Zk), "uint256(job.verification)"
        );
        vm.assertEq(job.zkCircuit, CIRCUIT, "job.zkCircuit");
        vm.assertEq(job.specHash, cJob, "the spec hash is the job commitment");
        vm.assertEq(job.traceRoot, bytes32(0), "no trace");
        vm.assertEq(job.challengeWindow, 0, "job.challengeWindow");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "market.totalEscrowed()");
    }

    function test_postZkJob_refusesBadRequests() public {
        IJobMarket.JobRequest memory r = zkRequest();
        vm.startPrank(requester);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownZkCircuit.selector, uint8(9)));
        market.postZkJob{value: PAYMENT}(r, 9);
        r.specHash = bytes32(0);
        vm.expectRevert(IJobMarket.ZeroHash.selector);
        market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        r.specHash = bytes32(R);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidCommitment.selector, bytes32(R)));
        market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        r = zkRequest();
        r.challengeWindow = WINDOW;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOutOfBounds.selector, WINDOW, 0, 0));
        market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        r = request();
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.UnsupportedVerification.selector, IJobMarket.Verification.Optimistic
            )
        );
        market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        r = request(IJobMarket.Verification.OptimisticInference);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.UnsupportedVerification.selector, IJobMarket.Verification.OptimisticInference
            )
        );
        market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        r = zkRequest();
        r.challengeWindow = WINDOW;
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.UnsupportedVerification.selector, IJobMarket.Verification.Zk)
        );
        market.postJob{value: PAYMENT}(r);
        r = zkRequest();
        vm.expectRevert(IJobMarket.ZeroPayment.selector);
        market.postZkJob(r, CIRCUIT);
        vm.stopPrank();
        vm.assertEq(market.totalEscrowed(), 0, "market.totalEscrowed()");

        vm.prank(pauser);
        market.pause();
        r = zkRequest();
        vm.prank(requester);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        market.postZkJob{value: PAYMENT}(r, CIRCUIT);
    }

    function test_claimJob_refusesZkJobs() public {
        uint256 jobId = postZk();
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ZkJobNotClaimable.selector, jobId));
        market.claimJob(jobId);
    }

    // ─────────────────────────────────────── submission ─────────────────────────────────────

    /// @notice A verifier whose code changed after registration (a metamorphic contract, an
    ///         upgrade) is no longer trusted, even with a proof its old code accepted.
    function test_aVerifierWhoseCodeChangedIsRefused() public {
        uint256 jobId = postZk();
        vm.etch(address(verifier), address(stakes).code);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.VerifierCodeChanged.selector, CIRCUIT));
        submitAs(worker, jobId, cOut, proof);
    }

    function test_submitZkResult_validProof_finalizesAndPaysInTheSameTransaction() public {
        uint256 jobId = postZk();
        uint256 fee = PAYMENT * 250 / ProtocolLimits.BPS;
        uint256 before = worker.balance;
        bytes memory resultCid = cid("logits");
        vm.expectEmit(address(market));
        emit IJobMarket.ZkResultAccepted(jobId, worker, cOut, resultCid);
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinalized(jobId, worker, PAYMENT - fee, fee);
        vm.prank(worker);
        market.submitZkResult(jobId, cOut, resultCid, proof);

        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Finalized), "uint256(job.status)");
        vm.assertEq(job.worker, address(0), "the prover is in the event, not stored");
        vm.assertEq(worker.balance - before, PAYMENT - fee, "paid at once");
        vm.assertEq(market.creditOf(worker), 0, "nothing left to withdraw");
        vm.assertEq(market.feesAccrued(), fee, "market.feesAccrued()");
        vm.assertEq(market.totalEscrowed(), 0, "market.totalEscrowed()");
        vm.assertEq(address(market).balance, fee, "address(market).balance");

        // A second submission of the same proof finds the job settled.
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.WrongStatus.selector,
                jobId,
                IJobMarket.JobStatus.Posted,
                IJobMarket.JobStatus.Finalized
            )
        );
        submitAs(worker, jobId, cOut, proof);
    }

    function test_submitZkResult_rejectsTamperedStatementsAndProofs() public {
        uint256 jobId = postZk();
        // Another output than the one proved.
        bytes32 otherOut = bytes32(uint256(cOut) ^ 1);
        vm.expectRevert(invalidProof(jobId, otherOut));
        submitAs(worker, jobId, otherOut, proof);
        // The output out of the field (the same value plus R).
        bytes32 wrapped = bytes32(uint256(cOut) + R);
        vm.expectRevert(invalidProof(jobId, wrapped));
        submitAs(worker, jobId, wrapped, proof);
        // The proof copied from the mempool by someone else.
        vm.expectRevert(invalidProof(jobId, cOut));
        submitAs(stranger, jobId, cOut, proof);
        // A tampered proof: A and C swapped, then a point off the curve.
        uint256[8] memory p = proof;
        (p[0], p[1], p[6], p[7]) = (proof[6], proof[7], proof[0], proof[1]);
        vm.expectRevert(invalidProof(jobId, cOut));
        submitAs(worker, jobId, cOut, p);
        p = proof;
        p[1] ^= 1;
        vm.expectRevert(invalidProof(jobId, cOut));
        submitAs(worker, jobId, cOut, p);

        // Another model or input batch: a job posted with another commitment.
        IJobMarket.JobRequest memory r = zkRequest();
        r.specHash = bytes32(uint256(cJob) ^ 1);
        vm.prank(requester);
        uint256 other = market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        vm.expectRevert(invalidProof(other, cOut));
        submitAs(worker, other, cOut, proof);

        // Nothing moved.
        vm.assertEq(
            uint256(market.getJob(jobId).status),
            uint256(IJobMarket.JobStatus.Posted),
            "uint256(market.getJob(jobId).status)"
        );
        vm.assertEq(market.totalEscrowed(), 2 * PAYMENT, "market.totalEscrowed()");
        vm.assertEq(market.feesAccrued(), 0, "market.feesAccrued()");
    }

    /// @notice A proof is bound to its job: the same statement posted again (job 2) cannot be
    ///         paid with job 1's proof, which a worker would otherwise replay without proving.
    function test_aProofForOneJobIsWorthlessForAnotherWithTheSameCommitments() public {
        uint256 first = postZk();
        uint256 second = postZk();
        vm.expectRevert(invalidProof(second, cOut));
        submitAs(worker, second, cOut, proof);
        submitAs(worker, first, cOut, proof);
        vm.assertEq(
            uint256(market.getJob(first).status), uint256(IJobMarket.JobStatus.Finalized), "job 1 paid"
        );
        vm.expectRevert(invalidProof(second, cOut));
        submitAs(worker, second, cOut, proof);
    }

    function test_submitZkResult_refusesWrongJobsAndLateProofs() public {
        uint256 optimistic = post();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotZkJob.selector, optimistic));
        submitAs(worker, optimistic, cOut, proof);
        uint256 inference = post(IJobMarket.Verification.OptimisticInference);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotZkJob.selector, inference));
        submitAs(worker, inference, cOut, proof);

        uint256 jobId = postZk();
        bytes memory bad = hex"00";
        vm.prank(worker);
        vm.expectRevert(IJobMarket.InvalidCid.selector);
        market.submitZkResult(jobId, cOut, bad, proof);

        uint256 deadline = market.getJob(jobId).deliveryDeadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DeliveryDeadlinePassed.selector, jobId, deadline));
        submitAs(worker, jobId, cOut, proof);

        // The requester takes the escrow back; nothing is stuck.
        uint256 before = market.creditOf(requester);
        vm.prank(requester);
        market.cancelJob(jobId);
        vm.assertEq(market.creditOf(requester) - before, PAYMENT, "market.creditOf(requester) - before");
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.WrongStatus.selector,
                jobId,
                IJobMarket.JobStatus.Posted,
                IJobMarket.JobStatus.Cancelled
            )
        );
        submitAs(worker, jobId, cOut, proof);
    }

    function test_submitZkResult_aWorkerThatRefusesEtherChangesNothing() public {
        uint256 jobId = postZk();
        // The proof's worker is a contract without receive(): its payout fails, so does the call.
        vm.etch(worker, type(EtherRefuser).runtimeCode);
        bytes memory resultCid = cid("logits");
        bytes memory call = abi.encodeCall(market.submitZkResult, (jobId, cOut, resultCid, proof));
        vm.expectRevert(IJobMarket.TransferFailed.selector);
        EtherRefuser(worker).exec(address(market), call);
        vm.assertEq(
            uint256(market.getJob(jobId).status),
            uint256(IJobMarket.JobStatus.Posted),
            "uint256(market.getJob(jobId).status)"
        );
        vm.assertEq(market.totalEscrowed(), PAYMENT, "market.totalEscrowed()");
    }

    /// @notice Post plus submit, as two transactions would pay: 21k each, their calldata, and
    ///         the calls' own gas (`lastCallGas`, so none of the test's call overhead counts).
    ///         In one test the submission finds the job's slots warm, so this reads about 16k
    ///         low; tests/it/zk.rs measures the mined transactions on anvil.
    function test_zkJob_gas() public {
        IJobMarket.JobRequest memory r = zkRequest();
        uint256[8] memory p = proof;
        vm.prank(requester);
        uint256 jobId = market.postZkJob{value: PAYMENT}(r, CIRCUIT);
        uint256 postGas = vm.lastCallGas().gasTotalUsed;
        vm.prank(worker);
        market.submitZkResult(jobId, cOut, logitsCid, p);
        uint256 submitGas = vm.lastCallGas().gasTotalUsed;
        uint256 calldataGas = _calldataGas(abi.encodeCall(market.postZkJob, (r, CIRCUIT)))
            + _calldataGas(abi.encodeCall(market.submitZkResult, (jobId, cOut, logitsCid, p)));
        uint256 total = postGas + submitGas + 2 * 21_000 + calldataGas;
        emit GasUsed(postGas, submitGas, calldataGas, total);
        vm.assertLe(total, 400_000, string.concat("a zk job costs ", vm.toString(total), " gas, over 400k"));
    }

    function _calldataGas(bytes memory data) internal pure returns (uint256 gas) {
        for (uint256 i = 0; i < data.length; i++) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }
}
