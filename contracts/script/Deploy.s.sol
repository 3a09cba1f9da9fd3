// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AuditPool} from "../src/AuditPool.sol";
import {DataAvailability} from "../src/DataAvailability.sol";
import {DisputeGame} from "../src/DisputeGame.sol";
import {JobMarket} from "../src/JobMarket.sol";
import {Referee} from "../src/Referee.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {ProtocolLimits} from "../src/libraries/ProtocolLimits.sol";
import {MnistMlpVerifier} from "../src/zk/MnistMlpVerifier.sol";
import {Vm} from "../test/utils/Test.sol";

/// @title Deploy
/// @notice Deploys StakeManager, JobMarket, the Referee and the DisputeGame, DataAvailability and
///         AuditPool, binds them (the game is the market's resolver, DataAvailability its
///         publisher, AuditPool its auditor), hands the roles to their holders and writes the
///         deployment file that the Rust crates, the CLI and the subgraph read.
/// @dev Environment (all optional except the broadcaster's key or --sender):
///      PEDALS_ADMIN, PEDALS_PAUSER, PEDALS_FEE_RECIPIENT: role holders (default: the deployer);
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

    /// @notice Deploys, wires and records the contracts.
    /// @return stakeManager The StakeManager's address.
    /// @return jobMarket The JobMarket's address.
    function run() external returns (StakeManager stakeManager, JobMarket jobMarket) {
        DisputeGame game;
        uint256 startBlock = vm.getBlockNumber();
        vm.startBroadcast();
        address deployer = msg.sender;
        address admin = vm.envOr("PEDALS_ADMIN", deployer);
        address pauser = vm.envOr("PEDALS_PAUSER", deployer);
        address feeRecipient = vm.envOr("PEDALS_FEE_RECIPIENT", deployer);

        // The deployer administers the stake manager until the market is bound, then hands over.
        stakeManager = new StakeManager(deployer, ProtocolLimits.MIN_UNBONDING_DELAY);
        // Likewise the market, until its resolver is set.
        jobMarket = new JobMarket(deployer, pauser, stakeManager, feeRecipient, defaultParams());
        stakeManager.bindMarket(address(jobMarket));
        game = new DisputeGame(jobMarket, new Referee());
        jobMarket.setResolver(address(game));
        // The devnet's zk circuit 1 (MLP 784-32-10, batch 1): its keys come from a public seed,
        // so anyone can forge its proofs. Never on a chain where value is at stake.
        if (vm.envOr("PEDALS_DEVNET_ZK", false)) {
            require(block.chainid == 31_337, "PEDALS_DEVNET_ZK: devnet keys on a devnet (chain 31337) only");
            jobMarket.registerZkCircuit(1, address(new MnistMlpVerifier()));
        }
        // Deployed last, so that every earlier address stays what it was before it existed.
        DataAvailability availability = new DataAvailability(jobMarket);
        jobMarket.setPublisher(address(availability));
        // Likewise after it: the audit pool, which finalized jobs fund (with their audit share).
        AuditPool pool = new AuditPool(jobMarket);
        jobMarket.setAuditor(address(pool));
        if (admin != deployer) {
            stakeManager.grantRole(stakeManager.DEFAULT_ADMIN_ROLE(), admin);
            stakeManager.renounceRole(stakeManager.DEFAULT_ADMIN_ROLE(), deployer);
            jobMarket.grantRole(jobMarket.DEFAULT_ADMIN_ROLE(), admin);
            jobMarket.renounceRole(jobMarket.DEFAULT_ADMIN_ROLE(), deployer);
        }
        vm.stopBroadcast();

        string memory path = vm.envOr(
            "PEDALS_DEPLOYMENT_FILE",
            string.concat(vm.projectRoot(), "/deployments/", vm.toString(block.chainid), ".json")
        );
        string memory key = "deployment";
        vm.serializeUint(key, "chainId", block.chainid);
        vm.serializeUint(key, "deploymentBlock", startBlock + 1);
        vm.serializeAddress(key, "deployer", deployer);
        vm.serializeAddress(key, "admin", admin);
        vm.serializeAddress(key, "pauser", pauser);
        vm.serializeAddress(key, "feeRecipient", feeRecipient);
        vm.serializeAddress(key, "stakeManager", address(stakeManager));
        vm.serializeAddress(key, "disputeGame", address(game));
        vm.serializeAddress(key, "referee", address(game.referee()));
        vm.serializeAddress(key, "dataAvailability", address(availability));
        vm.serializeAddress(key, "auditPool", address(pool));
        string memory json = vm.serializeAddress(key, "jobMarket", address(jobMarket));
        vm.writeJson(json, path);
    }
}
