// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {DisputeGame} from "../src/DisputeGame.sol";
import {GameRouter} from "../src/GameRouter.sol";
import {Referee} from "../src/Referee.sol";
import {IDisputeResolver} from "../src/interfaces/IDisputeResolver.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {Fixture, ScriptedResolver} from "./utils/Fixture.sol";

/// @notice The router as the market's resolver, in front of the MLP game and a scripted game
///         (the fine-tuning game plays behind it in LmDisputeGame.t.sol): each dispute goes to
///         the game that admitted its spec, and only that game's verdict reaches the market.
contract GameRouterTest is Fixture {
    GameRouter internal router;
    DisputeGame internal mlp;
    ScriptedResolver internal scripted;

    function setUp() public override {
        super.setUp();
        router = new GameRouter(market);
        mlp = new DisputeGame(IJobMarket(address(router)), new Referee());
        scripted = new ScriptedResolver(IJobMarket(address(router)));
        scripted.admit(SPEC_HASH, STEPS);
        vm.startPrank(admin);
        router.addGame(mlp);
        router.addGame(scripted);
        market.setResolver(address(router));
        vm.stopPrank();
    }

    function _mlpSpec() internal pure returns (DisputeGame.Spec memory s) {
        s.layers = new uint32[](2);
        (s.layers[0], s.layers[1]) = (4, 2);
        (s.batch, s.lrQ12, s.momentumQ12, s.seed, s.checkpointEvery, s.samples) = (2, 410, 3686, 5, 10, 4);
        s.datasetCid = "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        s.modelCid = "bafkreibbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    }

    function test_aDisputeGoesToTheGameThatAdmittedItsSpecAndItsVerdictToTheMarket() public {
        uint256 jobId = postClaimSubmitChallenge();
        vm.assertEq(address(router.gameOfJob(jobId)), address(scripted), "routed by spec");
        vm.assertEq(scripted.opened(), 1, "the game heard of it");
        vm.assertEq(scripted.lastTraceRoot(), traceRoot, "with the market's arguments");
        vm.assertEq(scripted.lastChallenger(), validator, "and its challenger");

        vm.expectRevert(abi.encodeWithSelector(GameRouter.NotJobsGame.selector, jobId, stranger));
        vm.prank(stranger);
        router.resolveDispute(jobId, false);
        vm.expectRevert(abi.encodeWithSelector(GameRouter.NotJobsGame.selector, jobId, address(mlp)));
        vm.prank(address(mlp));
        router.resolveDispute(jobId, false);

        scripted.decide(jobId, true);
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "worker lost"
        );
        vm.assertEq(address(router.gameOfJob(jobId)), address(0), "the route is closed");
        vm.expectRevert(abi.encodeWithSelector(GameRouter.NotJobsGame.selector, jobId, address(scripted)));
        scripted.decide(jobId, false);
    }

    function test_theMlpGamesClockDecidesThroughTheRouter() public {
        bytes32 specHash = mlp.admitSpec(_mlpSpec(), STEPS);
        vm.assertEq(router.admittedSteps(specHash), STEPS, "admitted through the router");
        vm.assertEq(address(router.gameOf(specHash)), address(mlp), "played by the MLP game");
        IJobMarket.JobRequest memory r = request();
        r.specHash = specHash;
        vm.prank(requester);
        uint256 jobId = market.postJob{value: PAYMENT}(r);
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        market.claimJob(jobId);
        bytes memory resultCid = cid("result");
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), trace[STEPS], finalProof, resultCid);
        stakeAs(validator, 1 ether);
        openChallenge(validator, jobId, 3);
        vm.assertEq(address(router.gameOfJob(jobId)), address(mlp), "the MLP game plays it");
        (,, uint256 clock,,) = mlp.gameOf(jobId);
        vm.warp(block.timestamp + clock + 1);
        mlp.timeout(jobId);
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "worker lost"
        );
    }

    function test_aSpecNoGameAdmittedIsNotPostedAndNotRouted() public {
        bytes32 unknown = keccak256("a spec nobody admitted");
        vm.assertEq(router.admittedSteps(unknown), 0, "no steps");
        vm.assertEq(address(router.gameOf(unknown)), address(0), "no game");
        IJobMarket.JobRequest memory r = request();
        r.specHash = unknown;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpecNotAdmitted.selector, unknown));
        vm.prank(requester);
        market.postJob{value: PAYMENT}(r);

        // A job without a game (batch inference) that the market would not challenge anyway.
        r.verification = IJobMarket.Verification.OptimisticInference;
        vm.prank(requester);
        uint256 jobId = market.postJob{value: PAYMENT}(r);
        vm.expectRevert(abi.encodeWithSelector(GameRouter.NoGame.selector, jobId, unknown));
        vm.prank(address(market));
        router.disputeOpened(jobId, 0, provider, validator, bytes32(0), bytes32(0), block.timestamp + 1 days);
    }

    function test_onlyTheMarketOpensDisputes() public {
        vm.expectRevert(abi.encodeWithSelector(GameRouter.NotMarket.selector, stranger));
        vm.prank(stranger);
        router.disputeOpened(1, 0, provider, validator, bytes32(0), bytes32(0), block.timestamp + 1 days);
    }

    function test_onlyTheMarketsAdminAddsGamesOnceEachUpToTheCap() public {
        IDisputeResolver extra = new ScriptedResolver(IJobMarket(address(router)));
        vm.expectRevert(abi.encodeWithSelector(GameRouter.NotAdmin.selector, stranger));
        vm.prank(stranger);
        router.addGame(extra);

        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(GameRouter.BadGame.selector, address(0)));
        router.addGame(IDisputeResolver(address(0)));
        vm.expectRevert(abi.encodeWithSelector(GameRouter.BadGame.selector, address(mlp)));
        router.addGame(mlp);
        for (uint256 i = 2; i < router.MAX_GAMES(); ++i) {
            router.addGame(new ScriptedResolver(IJobMarket(address(router))));
        }
        vm.expectRevert(abi.encodeWithSelector(GameRouter.BadGame.selector, address(extra)));
        router.addGame(extra);
        vm.stopPrank();

        IDisputeResolver[] memory all = router.games();
        vm.assertEq(all.length, router.MAX_GAMES(), "full");
        vm.assertEq(address(all[0]), address(mlp), "in the order added");
        vm.assertEq(address(all[1]), address(scripted), "in the order added");
    }
}
