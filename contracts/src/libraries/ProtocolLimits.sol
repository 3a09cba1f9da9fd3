// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobMarket} from "../interfaces/IJobMarket.sol";

/// @title ProtocolLimits
/// @notice Hard bounds that no admin can move. Admin-set parameters must stay inside them,
///         and the stake manager's unbonding delay is derived from them so that nobody can
///         escape a slash by unstaking ahead of it.
library ProtocolLimits {
    /// @notice Basis-point denominator (100% = 10 000).
    uint256 internal constant BPS = 10_000;

    /// @notice Largest protocol fee a job can pay: 10% of its payment.
    uint256 internal constant MAX_PROTOCOL_FEE_BPS = 1000;
    /// @notice Smallest provider collateral: 10% of a job's payment.
    uint256 internal constant MIN_COLLATERAL_BPS = 1000;
    /// @notice Largest provider collateral: 300% of a job's payment.
    uint256 internal constant MAX_COLLATERAL_BPS = 30_000;

    /// @notice Largest share of a worker's seized collateral that its convictors share: at
    ///         most half, so that a worker convicted by its own puppet still loses at least half
    ///         of its collateral (docs/economics.md).
    uint256 internal constant MAX_CHALLENGER_REWARD_BPS = 5000;
    /// @notice Smallest expiry penalty: a worker that claims a job and never delivers loses at
    ///         least a tenth of its collateral, so claiming to sit on a job is never free.
    uint256 internal constant MIN_EXPIRY_PENALTY_BPS = 1000;

    /// @notice Shortest challenge window any job may choose (short enough for a local devnet).
    uint256 internal constant MIN_CHALLENGE_WINDOW = 10 seconds;
    /// @notice Longest challenge window any job may choose.
    uint256 internal constant MAX_CHALLENGE_WINDOW = 7 days;
    /// @notice Shortest time a dispute may be given before it can be timed out.
    uint256 internal constant MIN_DISPUTE_DURATION = 1 minutes;
    /// @notice Longest time a dispute may take before anyone can time it out.
    uint256 internal constant MAX_DISPUTE_DURATION = 7 days;
    /// @notice Longest time from posting a job to its delivery deadline.
    uint256 internal constant MAX_JOB_DURATION = 30 days;

    /// @notice Smallest unbonding delay: longer than the longest window plus the longest dispute.
    uint256 internal constant MIN_UNBONDING_DELAY = MAX_CHALLENGE_WINDOW + MAX_DISPUTE_DURATION + 1 days;
    /// @notice Largest unbonding delay, so that stake can never be frozen indefinitely.
    uint256 internal constant MAX_UNBONDING_DELAY = 90 days;

    /// @notice Smallest challenge bond (the bond must pay for the worker's next move).
    uint256 internal constant MIN_CHALLENGE_BOND = 0.001 ether;
    /// @notice Largest challenge bond, so that honest validators are never priced out.
    uint256 internal constant MAX_CHALLENGE_BOND = 100 ether;
    /// @notice Smallest payment a job may escrow, so that its collateral never rounds to zero.
    uint256 internal constant MIN_PAYMENT = 1 gwei;
    /// @notice Largest payment a single job may escrow (keeps every amount inside uint96).
    uint256 internal constant MAX_PAYMENT = 10_000_000 ether;
    /// @notice Largest minimum stake an admin may require of a provider or validator.
    uint256 internal constant MAX_MIN_STAKE = 10_000 ether;

    /// @notice Longest CID accepted in a job posting or a result (binary CIDv1).
    uint256 internal constant MAX_CID_LENGTH = 128;

    /// @notice The order of BN254's scalar field: every zk commitment and public input is below it.
    uint256 internal constant SNARK_SCALAR_FIELD =
        21_888_242_871_839_275_222_246_405_745_257_275_088_548_364_400_416_034_343_698_204_186_575_808_495_617;

    /// @notice Reverts with `ParameterOutOfBounds` unless every market parameter lies in its bounds.
    /// @dev External, so that the linked library, not the market, carries this code (EIP-170).
    function checkParams(IJobMarket.MarketParams memory p) external pure {
        bound("protocolFeeBps", p.protocolFeeBps, 0, MAX_PROTOCOL_FEE_BPS);
        bound("collateralBps", p.collateralBps, MIN_COLLATERAL_BPS, MAX_COLLATERAL_BPS);
        bound("challengerRewardBps", p.challengerRewardBps, 0, MAX_CHALLENGER_REWARD_BPS);
        // Delivering a wrong result and convicting it through a puppet costs at least the
        // collateral less the reward, so it never beats expiry when the penalty is at most that.
        bound("expiryPenaltyBps", p.expiryPenaltyBps, MIN_EXPIRY_PENALTY_BPS, BPS - p.challengerRewardBps);
        bound("minChallengeWindow", p.minChallengeWindow, MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW);
        bound("maxChallengeWindow", p.maxChallengeWindow, p.minChallengeWindow, MAX_CHALLENGE_WINDOW);
        bound("maxDisputeDuration", p.maxDisputeDuration, MIN_DISPUTE_DURATION, MAX_DISPUTE_DURATION);
        bound("challengeBond", p.challengeBond, MIN_CHALLENGE_BOND, MAX_CHALLENGE_BOND);
        bound("minProviderStake", p.minProviderStake, 0, MAX_MIN_STAKE);
        bound("minValidatorStake", p.minValidatorStake, 0, MAX_MIN_STAKE);
    }

    function bound(string memory name, uint256 value, uint256 min, uint256 max) private pure {
        if (value < min || value > max) revert IJobMarket.ParameterOutOfBounds(name, value, min, max);
    }
}
