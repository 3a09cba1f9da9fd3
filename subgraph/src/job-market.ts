// SPDX-License-Identifier: Apache-2.0
// Handlers of the JobMarket events (contracts/src/interfaces/IJobMarket.sol) and of its
// OpenZeppelin AccessControl and Pausable events. Those of data availability keep their
// bookkeeping in src/availability.ts; the publication itself is indexed from the market's
// publisher, the DataAvailability contract (src/data-availability.ts).

import { Address, BigInt, ethereum } from "@graphprotocol/graph-ts";
import {
  ChallengeCommitted,
  ChallengeOpened,
  DataDemanded,
  DataPublished,
  DataUnavailable,
  DisputeResolved,
  FeeRecipientUpdated,
  FeesWithdrawn,
  JobCancelled,
  JobClaimed,
  JobExpired,
  JobFinalized,
  JobPosted,
  ParametersUpdated,
  ParametersUpdatedNewParamsStruct,
  Paused,
  PublisherUpdated,
  AuditorUpdated,
  ResolverUpdated,
  ResultSubmitted,
  RewardClaimed,
  RewardCollected,
  RewardPoolOpened,
  RoleAdminChanged,
  RoleGranted,
  RoleRevoked,
  Unpaused,
  Withdrawn,
  ZkCircuitRegistered,
  ZkJobPosted,
  ZkResultAccepted,
} from "../generated/JobMarket/JobMarket";
import {
  Challenge,
  ChallengeCommitment,
  ConfigChange,
  Job,
  MarketParameters,
  Withdrawal,
  ZkCircuit,
} from "../generated/schema";
import { dataDemanded, dataPublished, dataUnavailable } from "./availability";
import { rewardClaimed, rewardCollected, rewardPoolOpened } from "./rewards";
import {
  countStatus,
  credit,
  eventId,
  getAccount,
  getDay,
  getMarket,
  getProvider,
  getValidator,
  jobKey,
  roleAdminChanged,
  roleGranted,
  roleRevoked,
  setStatus,
} from "./helpers";

/** IJobMarket.Verification.Zk: the job was posted with postZkJob. */
const VERIFICATION_ZK = 1;

function loadJob(jobId: BigInt): Job | null {
  return Job.load(jobKey(jobId));
}

function circuitKey(circuit: i32): string {
  return circuit.toString();
}

function configChange(event: ethereum.Event, kind: string): ConfigChange {
  let c = new ConfigChange(eventId(event));
  c.kind = kind;
  c.contract = event.address;
  c.blockNumber = event.block.number;
  c.timestamp = event.block.timestamp;
  c.transactionHash = event.transaction.hash;
  return c;
}

export function handleJobPosted(event: JobPosted): void {
  let p = event.params;
  let r = p.request;
  let m = getMarket();
  let requester = getAccount(p.requester);
  let job = new Job(jobKey(p.jobId));
  job.jobId = p.jobId;
  job.status = "Posted";
  countStatus(m, null, "Posted");
  job.requester = requester.id;
  job.payment = p.payment;
  job.specHash = r.specHash;
  job.modelCid = r.modelCid;
  job.datasetCid = r.datasetCid;
  job.steps = r.steps;
  job.verification = r.verification;
  job.claimDeadline = r.claimDeadline;
  job.deliveryDeadline = r.deliveryDeadline;
  job.challengeWindow = r.challengeWindow;
  // The market snapshots its fee rate at posting; the indexed parameters are the same ones.
  let params = m.parameters;
  if (params !== null) {
    let mp = MarketParameters.load(params);
    if (mp !== null) job.feeBps = mp.protocolFeeBps;
  }
  job.challengeCount = 0;
  job.demandCount = 0;
  job.demandsMet = 0;
  job.demandsUnmet = 0;
  job.postedAt = event.block.timestamp;
  job.postedBlock = event.block.number;
  job.postedTx = event.transaction.hash;
  job.updatedAt = event.block.timestamp;
  job.save();

  if (p.jobId.gt(m.jobCount)) m.jobCount = p.jobId;
  m.totalPayments = m.totalPayments.plus(p.payment);
  m.save();
  let d = getDay(event);
  d.jobsPosted += 1;
  d.paymentsPosted = d.paymentsPosted.plus(p.payment);
  d.save();
}

export function handleJobCancelled(event: JobCancelled): void {
  let job = loadJob(event.params.jobId);
  if (job === null) return;
  let m = getMarket();
  setStatus(job, m, "Cancelled", event);
  job.cancelledAt = event.block.timestamp;
  job.refund = event.params.refund;
  job.save();
  credit(Address.fromBytes(job.requester), event.params.refund);
  m.totalRefunds = m.totalRefunds.plus(event.params.refund);
  m.save();
  let d = getDay(event);
  d.jobsCancelled += 1;
  d.refunds = d.refunds.plus(event.params.refund);
  d.save();
}

export function handleJobClaimed(event: JobClaimed): void {
  let job = loadJob(event.params.jobId);
  if (job === null) return;
  let m = getMarket();
  let provider = getProvider(event.params.worker, event);
  provider.jobsClaimed += 1;
  provider.collateralLocked = provider.collateralLocked.plus(event.params.collateral);
  provider.save();
  setStatus(job, m, "Claimed", event);
  job.worker = provider.id;
  job.collateral = event.params.collateral;
  job.claimedAt = event.block.timestamp;
  job.save();
  m.save();
  let d = getDay(event);
  d.jobsClaimed += 1;
  d.save();
}

export function handleResultSubmitted(event: ResultSubmitted): void {
  let p = event.params;
  let job = loadJob(p.jobId);
  if (job === null) return;
  let m = getMarket();
  setStatus(job, m, "Submitted", event);
  job.submittedSteps = p.steps;
  job.traceRoot = p.traceRoot;
  job.finalStateHash = p.finalStateHash;
  job.resultCid = p.resultCid;
  job.windowEnd = p.windowEnd;
  job.submittedAt = event.block.timestamp;
  job.save();
  m.save();
  let provider = getProvider(p.worker, event);
  provider.jobsSubmitted += 1;
  provider.save();
  let d = getDay(event);
  d.resultsSubmitted += 1;
  d.save();
}

// Two paths end here: `finalize` of a claimed optimistic job after its window, and
// `submitZkResult` of a zk job that was never claimed (no collateral; its ZkResultAccepted, just
// before in the same transaction, made the worker known and may have created its Provider).
export function handleJobFinalized(event: JobFinalized): void {
  let p = event.params;
  let job = loadJob(p.jobId);
  if (job === null) return;
  let m = getMarket();
  let provider = getProvider(p.worker, event);
  setStatus(job, m, "Finalized", event);
  job.finalizedAt = event.block.timestamp;
  job.workerPayout = p.workerPayout;
  job.fee = p.fee;
  if (job.worker === null) job.worker = provider.id;
  job.save();
  provider.jobsFinalized += 1;
  provider.paymentsEarned = provider.paymentsEarned.plus(p.workerPayout);
  provider.earnings = provider.earnings.plus(p.workerPayout);
  let collateral = job.collateral;
  if (collateral !== null) provider.collateralLocked = provider.collateralLocked.minus(collateral);
  provider.save();
  // `finalize` credits the payout for a later withdrawal; `submitZkResult` sends it to the
  // worker in the same transaction, so it never becomes market credit.
  if (job.verification != VERIFICATION_ZK) credit(p.worker, p.workerPayout);
  m.totalWorkerPayouts = m.totalWorkerPayouts.plus(p.workerPayout);
  m.totalFees = m.totalFees.plus(p.fee);
  m.save();
  let d = getDay(event);
  d.jobsFinalized += 1;
  d.workerPayouts = d.workerPayouts.plus(p.workerPayout);
  d.protocolFees = d.protocolFees.plus(p.fee);
  d.save();
}

export function handleJobExpired(event: JobExpired): void {
  let p = event.params;
  let job = loadJob(p.jobId);
  if (job === null) return;
  let m = getMarket();
  setStatus(job, m, "Expired", event);
  job.expiredAt = event.block.timestamp;
  job.refund = p.refund;
  job.penalty = p.penalty;
  job.save();
  let provider = getProvider(p.worker, event);
  provider.jobsExpired += 1;
  provider.penalties = provider.penalties.plus(p.penalty);
  let collateral = job.collateral;
  if (collateral !== null) provider.collateralLocked = provider.collateralLocked.minus(collateral);
  if (!p.penalty.isZero()) {
    // The stake manager's CollateralSeized follows in this transaction; it links the slash.
    provider.pendingSeizureTx = event.transaction.hash;
    provider.pendingSeizureJob = job.id;
    provider.pendingSeizureReason = "Expiry";
  }
  provider.save();
  credit(Address.fromBytes(job.requester), p.refund.plus(p.penalty));
  m.totalRefunds = m.totalRefunds.plus(p.refund);
  m.totalPenalties = m.totalPenalties.plus(p.penalty);
  m.save();
  let d = getDay(event);
  d.jobsExpired += 1;
  d.refunds = d.refunds.plus(p.refund);
  d.penalties = d.penalties.plus(p.penalty);
  d.save();
}

export function handleZkJobPosted(event: ZkJobPosted): void {
  let p = event.params;
  // JobPosted, earlier in the same transaction, created the job with the common fields.
  let job = loadJob(p.jobId);
  if (job === null) return;
  job.zkCircuit = p.circuit;
  // postZkJob refuses an unregistered circuit, so the circuit is here unless the subgraph
  // started after its registration; the number alone is kept then.
  let circuit = ZkCircuit.load(circuitKey(p.circuit));
  if (circuit !== null) {
    circuit.jobCount += 1;
    circuit.save();
    job.circuit = circuit.id;
  }
  job.save();
  let m = getMarket();
  m.zkJobCount += 1;
  m.save();
  let d = getDay(event);
  d.zkJobsPosted += 1;
  d.save();
}

// A valid proof: the job goes from Posted to Finalized in this transaction, and the JobFinalized
// that follows settles it. This is the first the subgraph hears of the worker (zk jobs have no
// claim), so the status, payout and counts are left to that handler.
export function handleZkResultAccepted(event: ZkResultAccepted): void {
  let p = event.params;
  let job = loadJob(p.jobId);
  if (job === null) return;
  let provider = getProvider(p.worker, event);
  provider.zkJobsProven += 1;
  provider.save();
  job.worker = provider.id;
  job.outputCommitment = p.outputCommitment;
  job.resultCid = p.resultCid;
  job.updatedAt = event.block.timestamp;
  job.save();
  let circuitId = job.circuit;
  if (circuitId !== null) {
    let circuit = ZkCircuit.load(circuitId);
    if (circuit !== null) {
      circuit.jobsFinalized += 1;
      circuit.save();
    }
  }
  let d = getDay(event);
  d.zkResultsAccepted += 1;
  d.save();
}

export function handleChallengeCommitted(event: ChallengeCommitted): void {
  let p = event.params;
  let job = loadJob(p.jobId);
  if (job === null) return;
  let v = getValidator(p.committer);
  v.commitments += 1;
  v.save();
  let c = new ChallengeCommitment(eventId(event));
  c.job = job.id;
  c.committer = v.id;
  c.commitment = p.commitment;
  c.blockNumber = event.block.number;
  c.timestamp = event.block.timestamp;
  c.transactionHash = event.transaction.hash;
  c.save();
  let d = getDay(event);
  d.challengeCommitments += 1;
  d.save();
}

export function handleChallengeOpened(event: ChallengeOpened): void {
  let p = event.params;
  let job = loadJob(p.jobId);
  if (job === null) return;
  let worker = job.worker;
  if (worker === null) return;
  let m = getMarket();
  let v = getValidator(p.challenger);
  v.challengesOpened += 1;
  v.bondsPosted = v.bondsPosted.plus(p.bond);
  v.save();

  job.challengeCount += 1;
  let c = new Challenge(job.id + "-" + job.challengeCount.toString());
  c.job = job.id;
  c.index = job.challengeCount;
  c.challenger = v.id;
  c.worker = worker;
  c.step = p.step;
  c.claimedStateHash = p.claimedStateHash;
  c.bond = p.bond;
  c.resolver = p.resolver;
  c.deadline = p.deadline;
  c.outcome = "Open";
  c.openedAt = event.block.timestamp;
  c.openedBlock = event.block.number;
  c.openedTx = event.transaction.hash;
  c.moveCount = 0;
  c.save();

  setStatus(job, m, "Disputed", event);
  job.openChallenge = c.id;
  job.disputedAt = event.block.timestamp;
  job.save();
  m.challengeCount += 1;
  m.totalBonds = m.totalBonds.plus(p.bond);
  m.save();
  let d = getDay(event);
  d.challengesOpened += 1;
  d.bondsPosted = d.bondsPosted.plus(p.bond);
  d.save();
}

export function handleDisputeResolved(event: DisputeResolved): void {
  let p = event.params;
  let job = loadJob(p.jobId);
  if (job === null) return;
  let open = job.openChallenge;
  if (open === null) return;
  let c = Challenge.load(open);
  if (c === null) return;
  let m = getMarket();
  let d = getDay(event);
  let provider = getProvider(Address.fromBytes(c.worker), event);
  let v = getValidator(Address.fromBytes(c.challenger));

  c.resolvedAt = event.block.timestamp;
  c.resolvedTx = event.transaction.hash;
  c.challengerPayout = p.challengerPayout;
  c.requesterPayout = p.requesterPayout;
  if (p.workerLost) {
    c.outcome = "WorkerLost";
    setStatus(job, m, "Resolved", event);
    job.resolvedAt = event.block.timestamp;
    provider.disputesLost += 1;
    let collateral = job.collateral;
    if (collateral !== null) {
      provider.collateralLocked = provider.collateralLocked.minus(collateral);
      if (!collateral.isZero()) {
        provider.pendingSeizureTx = event.transaction.hash;
        provider.pendingSeizureJob = job.id;
        provider.pendingSeizureReason = "DisputeLost";
      }
    }
    v.challengesWon += 1;
    v.totalChallengerPayouts = v.totalChallengerPayouts.plus(p.challengerPayout);
    credit(Address.fromBytes(c.challenger), p.challengerPayout);
    credit(Address.fromBytes(job.requester), p.requesterPayout);
    m.totalChallengerPayouts = m.totalChallengerPayouts.plus(p.challengerPayout);
    m.totalRefunds = m.totalRefunds.plus(job.payment);
    d.disputesWorkerLost += 1;
    d.challengerPayouts = d.challengerPayouts.plus(p.challengerPayout);
    d.refunds = d.refunds.plus(job.payment);
  } else {
    // The worker keeps the job and wins the bond; the window runs on until `windowEnd`.
    c.outcome = p.timedOut ? "TimedOut" : "ChallengerLost";
    c.windowEnd = p.windowEnd;
    setStatus(job, m, "Submitted", event);
    job.windowEnd = p.windowEnd;
    provider.disputesWon += 1;
    provider.bondsWon = provider.bondsWon.plus(c.bond);
    provider.earnings = provider.earnings.plus(c.bond);
    if (p.timedOut) v.challengesTimedOut += 1;
    else v.challengesLost += 1;
    v.bondsLost = v.bondsLost.plus(c.bond);
    credit(Address.fromBytes(c.worker), c.bond);
    if (p.timedOut) d.disputesTimedOut += 1;
  }
  job.openChallenge = null;
  c.save();
  job.save();
  provider.save();
  v.save();
  m.save();
  d.disputesResolved += 1;
  d.save();
}

// ─── data availability (src/availability.ts) ───

export function handleDataDemanded(event: DataDemanded): void {
  dataDemanded(event);
}

export function handleDataPublished(event: DataPublished): void {
  dataPublished(event);
}

export function handleDataUnavailable(event: DataUnavailable): void {
  dataUnavailable(event);
}

// ─── payouts and administration ───

export function handleRewardPoolOpened(event: RewardPoolOpened): void {
  rewardPoolOpened(event);
}

export function handleRewardClaimed(event: RewardClaimed): void {
  rewardClaimed(event);
}

export function handleRewardCollected(event: RewardCollected): void {
  rewardCollected(event);
}

export function handleWithdrawn(event: Withdrawn): void {
  let a = getAccount(event.params.account);
  a.totalWithdrawn = a.totalWithdrawn.plus(event.params.amount);
  a.save();
  let w = new Withdrawal(eventId(event));
  w.kind = "Credit";
  w.account = a.id;
  w.amount = event.params.amount;
  w.blockNumber = event.block.number;
  w.timestamp = event.block.timestamp;
  w.transactionHash = event.transaction.hash;
  w.save();
  let d = getDay(event);
  d.creditsWithdrawn = d.creditsWithdrawn.plus(event.params.amount);
  d.save();
}

export function handleFeesWithdrawn(event: FeesWithdrawn): void {
  let a = getAccount(event.params.recipient);
  let w = new Withdrawal(eventId(event));
  w.kind = "Fees";
  w.account = a.id;
  w.amount = event.params.amount;
  w.blockNumber = event.block.number;
  w.timestamp = event.block.timestamp;
  w.transactionHash = event.transaction.hash;
  w.save();
  let m = getMarket();
  m.totalFeesWithdrawn = m.totalFeesWithdrawn.plus(event.params.amount);
  m.save();
  let d = getDay(event);
  d.feesWithdrawn = d.feesWithdrawn.plus(event.params.amount);
  d.save();
}

function saveParameters(event: ethereum.Event, p: ParametersUpdatedNewParamsStruct, tag: i32): MarketParameters {
  let mp = new MarketParameters(eventId(event).concatI32(tag));
  mp.protocolFeeBps = p.protocolFeeBps;
  mp.collateralBps = p.collateralBps;
  mp.expiryPenaltyBps = p.expiryPenaltyBps;
  mp.challengerRewardBps = p.challengerRewardBps;
  mp.minChallengeWindow = p.minChallengeWindow;
  mp.maxChallengeWindow = p.maxChallengeWindow;
  mp.maxDisputeDuration = p.maxDisputeDuration;
  mp.challengeBond = p.challengeBond;
  mp.minProviderStake = p.minProviderStake;
  mp.minValidatorStake = p.minValidatorStake;
  mp.blockNumber = event.block.number;
  mp.timestamp = event.block.timestamp;
  mp.transactionHash = event.transaction.hash;
  mp.save();
  return mp;
}

export function handleParametersUpdated(event: ParametersUpdated): void {
  // Both tuples have the same layout; read the old one through the new one's accessors.
  let oldParams = changetype<ParametersUpdatedNewParamsStruct>(event.params.oldParams);
  let c = configChange(event, "ParametersUpdated");
  c.oldParameters = saveParameters(event, oldParams, 0).id;
  let fresh = saveParameters(event, event.params.newParams, 1);
  c.newParameters = fresh.id;
  c.save();
  let m = getMarket();
  m.jobMarket = event.address;
  m.parameters = fresh.id;
  m.save();
}

export function handleFeeRecipientUpdated(event: FeeRecipientUpdated): void {
  let c = configChange(event, "FeeRecipientUpdated");
  c.previousAccount = event.params.oldRecipient;
  c.account = event.params.newRecipient;
  c.save();
  let m = getMarket();
  m.jobMarket = event.address;
  m.feeRecipient = event.params.newRecipient;
  m.save();
}

export function handleResolverUpdated(event: ResolverUpdated): void {
  let c = configChange(event, "ResolverUpdated");
  c.previousAccount = event.params.oldResolver;
  c.account = event.params.newResolver;
  c.save();
  let m = getMarket();
  m.resolver = event.params.newResolver;
  m.save();
}

// The admin names the contract where demanded data is published (DataAvailability); the zero
// address disables demands. A demand keeps the publisher it was made with.
export function handlePublisherUpdated(event: PublisherUpdated): void {
  let c = configChange(event, "PublisherUpdated");
  c.previousAccount = event.params.oldPublisher;
  c.account = event.params.newPublisher;
  c.save();
  let m = getMarket();
  m.publisher = event.params.newPublisher;
  m.save();
}

// The admin names the audit pool that a finalized job with an audit root sends part of its fee
// to (AuditPool); the zero address turns auditing off. `JobFinalized.fee` is then the protocol's
// part only.
export function handleAuditorUpdated(event: AuditorUpdated): void {
  let c = configChange(event, "AuditorUpdated");
  c.previousAccount = event.params.oldAuditor;
  c.account = event.params.newAuditor;
  c.save();
  let m = getMarket();
  m.auditor = event.params.newAuditor;
  m.save();
}

export function handleZkCircuitRegistered(event: ZkCircuitRegistered): void {
  let p = event.params;
  // The registry is set-once (ZkCircuitTaken), so a circuit is never registered twice.
  let circuit = new ZkCircuit(circuitKey(p.circuit));
  circuit.circuit = p.circuit;
  circuit.verifier = p.verifier;
  circuit.jobCount = 0;
  circuit.jobsFinalized = 0;
  circuit.registeredAt = event.block.timestamp;
  circuit.registeredBlock = event.block.number;
  circuit.registeredTx = event.transaction.hash;
  circuit.save();
  let c = configChange(event, "ZkCircuitRegistered");
  c.account = p.verifier;
  c.zkCircuit = circuit.id;
  c.save();
}

export function handlePaused(event: Paused): void {
  let c = configChange(event, "Paused");
  c.account = event.params.account;
  c.save();
  let m = getMarket();
  m.paused = true;
  m.save();
}

export function handleUnpaused(event: Unpaused): void {
  let c = configChange(event, "Unpaused");
  c.account = event.params.account;
  c.save();
  let m = getMarket();
  m.paused = false;
  m.save();
}

export function handleRoleGranted(event: RoleGranted): void {
  roleGranted(event, event.params.role, event.params.account, event.params.sender);
}

export function handleRoleRevoked(event: RoleRevoked): void {
  roleRevoked(event, event.params.role, event.params.account, event.params.sender);
}

export function handleRoleAdminChanged(event: RoleAdminChanged): void {
  roleAdminChanged(event, event.params.role, event.params.newAdminRole);
}
