// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IDisputeResolver} from "./interfaces/IDisputeResolver.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";

/// @title GameRouter
/// @notice The market's one dispute resolver, in front of every dispute game (docs/protocol.md
///         §8): a job's dispute goes to the game that admitted the job's spec. Toward the
///         games it stands where the market would: they are deployed with this router as their
///         market, and call on it only `getJob` and `resolveDispute`, which it forwards.
/// @dev A spec hash is the SHA-256 of the spec's JSON, and each game's JSON opens with its own
///      fixed prefix, so no spec hash is admitted by two games without a SHA-256 collision;
///      the first game (in the order added) that admitted a hash is the one that plays it.
///      Games are only ever added, by the market's admin, so an open dispute keeps its game.
contract GameRouter is IDisputeResolver {
    /// @notice The most games a router holds: `admittedSteps` asks each in turn.
    uint256 public constant MAX_GAMES = 8;

    /// @notice The market whose resolver this router is.
    IJobMarket public immutable market;

    IDisputeResolver[] internal _games;

    /// @notice The game playing each job's open dispute (zero when none is open).
    mapping(uint256 jobId => IDisputeResolver) public gameOfJob;

    /// @notice `game` now plays the disputes of the specs it admits.
    event GameAdded(address indexed game);
    /// @notice The dispute of `jobId` went to `game`.
    event DisputeRouted(uint256 indexed jobId, address indexed game);

    /// @notice Only the market may open disputes.
    error NotMarket(address caller);
    /// @notice Only the market's admin may add games.
    error NotAdmin(address caller);
    /// @notice Only the game playing the dispute of `jobId` may decide it.
    error NotJobsGame(uint256 jobId, address caller);
    /// @notice No game admitted the spec of the disputed job.
    error NoGame(uint256 jobId, bytes32 specHash);
    /// @notice The game is zero, already added, or the router holds `MAX_GAMES`.
    error BadGame(address game);

    /// @param market_ The job market whose resolver this router is.
    constructor(IJobMarket market_) {
        market = market_;
    }

    /// @notice Adds `game`, deployed with this router as its market. The market's admin only;
    ///         a game is never removed.
    function addGame(IDisputeResolver game) external {
        if (!IAccessControl(address(market)).hasRole(bytes32(0), msg.sender)) revert NotAdmin(msg.sender);
        uint256 n = _games.length;
        if (address(game) == address(0) || n == MAX_GAMES) revert BadGame(address(game));
        for (uint256 i = 0; i < n; ++i) {
            if (_games[i] == game) revert BadGame(address(game));
        }
        _games.push(game);
        emit GameAdded(address(game));
    }

    /// @notice Every game, in the order added.
    function games() external view returns (IDisputeResolver[] memory) {
        return _games;
    }

    /// @inheritdoc IDisputeResolver
    function admittedSteps(bytes32 specHash) external view returns (uint256 steps) {
        (, steps) = _route(specHash);
    }

    /// @notice The game that plays the disputes of spec `specHash` (zero if none admitted it).
    function gameOf(bytes32 specHash) external view returns (IDisputeResolver game) {
        (game,) = _route(specHash);
    }

    /// @inheritdoc IDisputeResolver
    function disputeOpened(
        uint256 jobId,
        uint256 step,
        address worker,
        address challenger,
        bytes32 traceRoot,
        bytes32 claimedStateHash,
        uint256 deadline
    ) external {
        if (msg.sender != address(market)) revert NotMarket(msg.sender);
        bytes32 specHash = market.getJob(jobId).specHash;
        (IDisputeResolver game,) = _route(specHash);
        // The market posts an optimistic job only once a game admitted its spec, and games are
        // never removed, so this holds for every job the market lets anyone challenge.
        if (address(game) == address(0)) revert NoGame(jobId, specHash);
        gameOfJob[jobId] = game;
        emit DisputeRouted(jobId, address(game));
        game.disputeOpened(jobId, step, worker, challenger, traceRoot, claimedStateHash, deadline);
    }

    /// @notice The market's job, for the games (which read their job through the router).
    function getJob(uint256 jobId) external view returns (IJobMarket.Job memory) {
        return market.getJob(jobId);
    }

    /// @notice The verdict of the game playing `jobId`'s dispute, passed on to the market.
    function resolveDispute(uint256 jobId, bool workerLost) external {
        if (msg.sender != address(gameOfJob[jobId])) revert NotJobsGame(jobId, msg.sender);
        delete gameOfJob[jobId];
        market.resolveDispute(jobId, workerLost);
    }

    function _route(bytes32 specHash) internal view returns (IDisputeResolver game, uint256 steps) {
        uint256 n = _games.length;
        for (uint256 i = 0; i < n; ++i) {
            // slither-disable-next-line calls-loop
            steps = _games[i].admittedSteps(specHash);
            if (steps != 0) return (_games[i], steps);
        }
        return (IDisputeResolver(address(0)), 0);
    }
}
