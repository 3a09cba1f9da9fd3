// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AuditPool} from "../src/AuditPool.sol";
import {DataAvailability} from "../src/DataAvailability.sol";
import {DisputeGame} from "../src/DisputeGame.sol";
import {GameRouter} from "../src/GameRouter.sol";
import {JobMarket} from "../src/JobMarket.sol";
import {LmDisputeGame} from "../src/LmDisputeGame.sol";
import {LmElementReferee, LmFullProgramReferee, LmProgramReferee, LmSpanReferee} from "../src/LmReferee.sol";
import {Referee} from "../src/Referee.sol";
import {SpanDisputeGame} from "../src/SpanDisputeGame.sol";
import {SpanPayments} from "../src/SpanPayments.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {IDisputeResolver} from "../src/interfaces/IDisputeResolver.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {ProtocolLimits} from "../src/libraries/ProtocolLimits.sol";
import {MnistMlpVerifier} from "../src/zk/MnistMlpVerifier.sol";
import {Vm} from "../test/utils/Test.sol";

/// @title Deploy
/// @notice Deploys StakeManager, JobMarket, the GameRouter with the two dispute games behind it
///         (DisputeGame with its Referee for MLP training, LmDisputeGame with its two referees
///         for fine-tuning), DataAvailability, AuditPool, SpanPayments (split inference's
///         vouchers, standing alone) and SpanDisputeGame (split inference's disputes, with its
///         LmSpanReferee), binds them (the router is the market's resolver, DataAvailability its
///         publisher, AuditPool its auditor, SpanDisputeGame the stake manager's only slasher),
///         hands the roles to their holders and writes the deployment file that the Rust crates,
///         the CLI and the subgraph read.
/// @dev Environment (all optional except the broadcaster's key or --sender):
///      PEDALS_ADMIN, PEDALS_PAUSER, PEDALS_FEE_RECIPIENT: role holders (default: the deployer);
///      PEDALS_SPAN_WITHDRAW_DELAY: SpanPayments' withdrawal delay in seconds (default 1 day);
///      PEDALS_SPAN_DISPUTE_BOND, PEDALS_SPAN_SLASH, PEDALS_SPAN_DISPUTE_CLOCK,
///      PEDALS_SPAN_RECEIPT_WINDOW: SpanDisputeGame's bond and most slashed in wei, each side's
///      clock and how long a receipt can be disputed, in seconds (defaults 0.01 ether, 0.1
///      ether, 1 day, 1 day);
///      PEDALS_DEPLOYMENT_FILE: where to write the JSON (default deployments/<chainId>.json,
///      which must lie inside foundry.toml's fs_permissions).
///      Run: forge script script/Deploy.s.sol:Deploy --rpc-url <url> --broadcast --private-key <key>
contract Deploy {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @notice The parameters a fresh market starts with. Windows as short as a local devnet
    ///         needs are allowed; a production admin raises `minChallengeWindow`.
    function defaultParams() public pure returns (IJobMarket.MarketParams memory) {
        return IJobMarket.MarketParams({
            protocolFeeBps: 250,
            collateralBps: 5000,
            expiryPenaltyBps: 5000,
            challengerRewardBps: 5000,
            minChallengeWindow: uint32(ProtocolLimits.MIN_CHALLENGE_WINDOW),
            maxChallengeWindow: uint32(ProtocolLimits.MAX_CHALLENGE_WINDOW),
            maxDisputeDuration: 1 days,
            challengeBond: 0.01 ether,
            minProviderStake: 0.1 ether,
            minValidatorStake: 0.1 ether
        });
    }

    /// @dev What `run` deployed and who holds its roles, for the deployment file.
    struct Deployed {
        uint256 startBlock;
        address deployer;
        address admin;
        address pauser;
        address feeRecipient;
        StakeManager stakeManager;
        JobMarket jobMarket;
        GameRouter router;
        DataAvailability availability;
        AuditPool pool;
        SpanPayments payments;
        SpanDisputeGame spanGame;
    }

    /// @notice Deploys, wires and records the contracts.
    /// @return stakeManager The StakeManager's address.
    /// @return jobMarket The JobMarket's address.
    function run() external returns (StakeManager stakeManager, JobMarket jobMarket) {
        Deployed memory d;
        d.startBlock = vm.getBlockNumber();
        vm.startBroadcast();
        address deployer = msg.sender;
        address admin = vm.envOr("PEDALS_ADMIN", deployer);
        (d.deployer, d.admin) = (deployer, admin);
        d.pauser = vm.envOr("PEDALS_PAUSER", deployer);
        d.feeRecipient = vm.envOr("PEDALS_FEE_RECIPIENT", deployer);

        // The deployer administers the stake manager until the market is bound, then hands over.
        stakeManager = new StakeManager(deployer, ProtocolLimits.MIN_UNBONDING_DELAY);
        // Likewise the market, until its resolver is set.
        jobMarket = new JobMarket(deployer, d.pauser, stakeManager, d.feeRecipient, defaultParams());
        stakeManager.bindMarket(address(jobMarket));
        d.router = _games(jobMarket);
        jobMarket.setResolver(address(d.router));
        // The devnet's zk circuit 1 (MLP 784-32-10, batch 1): its keys come from a public seed,
        // so anyone can forge its proofs. Never on a chain where value is at stake.
        if (vm.envOr("PEDALS_DEVNET_ZK", false)) {
            require(block.chainid == 31_337, "PEDALS_DEVNET_ZK: devnet keys on a devnet (chain 31337) only");
            jobMarket.registerZkCircuit(1, address(new MnistMlpVerifier()));
        }
        // Deployed last, so that every earlier address stays what it was before it existed.
        d.availability = new DataAvailability(jobMarket);
        jobMarket.setPublisher(address(d.availability));
        // Likewise after it: the audit pool, which finalized jobs fund (with their audit share).
        d.pool = new AuditPool(jobMarket);
        jobMarket.setAuditor(address(d.pool));
        // And after that, split inference's payment channels, which need no other contract.
        d.payments = new SpanPayments(vm.envOr("PEDALS_SPAN_WITHDRAW_DELAY", uint256(1 days)));
        // Then split inference's dispute game, the stake manager's only slasher.
        d.spanGame = _spanGame(stakeManager, d.router, d.feeRecipient);
        stakeManager.grantRole(stakeManager.SLASHER_ROLE(), address(d.spanGame));
        if (admin != deployer) {
            stakeManager.grantRole(stakeManager.DEFAULT_ADMIN_ROLE(), admin);
            stakeManager.renounceRole(stakeManager.DEFAULT_ADMIN_ROLE(), deployer);
            jobMarket.grantRole(jobMarket.DEFAULT_ADMIN_ROLE(), admin);
            jobMarket.renounceRole(jobMarket.DEFAULT_ADMIN_ROLE(), deployer);
        }
        vm.stopBroadcast();
        (d.stakeManager, d.jobMarket) = (stakeManager, jobMarket);
        _record(d);
    }

    /// @dev The router and the games behind it, which see the router as their market (it
    ///      forwards their verdicts): the MLP game first, then the fine-tuning game.
    function _games(JobMarket jobMarket) internal returns (GameRouter router) {
        router = new GameRouter(jobMarket);
        router.addGame(new DisputeGame(IJobMarket(address(router)), new Referee()));
        router.addGame(
            new LmDisputeGame(
                IJobMarket(address(router)),
                new LmProgramReferee(),
                new LmFullProgramReferee(),
                new LmElementReferee()
            )
        );
    }

    /// @dev The span dispute game, with the fine-tuning game's element referee.
    function _spanGame(StakeManager stakeManager, GameRouter router, address treasury)
        internal
        returns (SpanDisputeGame)
    {
        LmElementReferee elements = LmDisputeGame(address(router.games()[1])).elements();
        return new SpanDisputeGame(
            stakeManager,
            new LmSpanReferee(),
            elements,
            vm.envOr("PEDALS_SPAN_DISPUTE_BOND", uint256(0.01 ether)),
            vm.envOr("PEDALS_SPAN_SLASH", uint256(0.1 ether)),
            uint32(vm.envOr("PEDALS_SPAN_DISPUTE_CLOCK", uint256(1 days))),
            treasury,
            uint32(vm.envOr("PEDALS_SPAN_RECEIPT_WINDOW", uint256(1 days)))
        );
    }

    /// @dev Writes the deployment file.
    function _record(Deployed memory d) internal {
        string memory path = vm.envOr(
            "PEDALS_DEPLOYMENT_FILE",
            string.concat(vm.projectRoot(), "/deployments/", vm.toString(block.chainid), ".json")
        );
        IDisputeResolver[] memory games = d.router.games();
        DisputeGame game = DisputeGame(address(games[0]));
        LmDisputeGame lmGame = LmDisputeGame(address(games[1]));
        string memory key = "deployment";
        vm.serializeUint(key, "chainId", block.chainid);
        vm.serializeUint(key, "deploymentBlock", d.startBlock + 1);
        vm.serializeAddress(key, "deployer", d.deployer);
        vm.serializeAddress(key, "admin", d.admin);
        vm.serializeAddress(key, "pauser", d.pauser);
        vm.serializeAddress(key, "feeRecipient", d.feeRecipient);
        vm.serializeAddress(key, "stakeManager", address(d.stakeManager));
        vm.serializeAddress(key, "gameRouter", address(d.router));
        vm.serializeAddress(key, "disputeGame", address(game));
        vm.serializeAddress(key, "referee", address(game.referee()));
        vm.serializeAddress(key, "lmDisputeGame", address(lmGame));
        vm.serializeAddress(key, "lmProgramReferee", address(lmGame.program()));
        vm.serializeAddress(key, "lmFullProgramReferee", address(lmGame.fullProgram()));
        vm.serializeAddress(key, "lmElementReferee", address(lmGame.elements()));
        vm.serializeAddress(key, "dataAvailability", address(d.availability));
        vm.serializeAddress(key, "auditPool", address(d.pool));
        vm.serializeAddress(key, "spanPayments", address(d.payments));
        vm.serializeAddress(key, "spanDisputeGame", address(d.spanGame));
        vm.serializeAddress(key, "lmSpanReferee", address(d.spanGame.spans()));
        string memory json = vm.serializeAddress(key, "jobMarket", address(d.jobMarket));
        vm.writeJson(json, path);
    }
}
