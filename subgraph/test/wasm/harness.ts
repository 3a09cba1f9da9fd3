// SPDX-License-Identifier: Apache-2.0
// Runs the mappings against events, offline: compiled together with src/ by test/mappings.test.mjs,
// which supplies the few graph-node host functions the mappings import (store, BigInt
// arithmetic, conversions, log). The store lives here, in AssemblyScript; the host forwards
// store.get/store.set to `storeGet`/`storeSet`. A failed `check` aborts with its message.
// test/wasm/support.ts has the event builders and checks; test/wasm/availability.ts, a second
// entry file of the same module, the data-availability steps of the scenario (JobMarket and
// DataAvailability events).

import { BigInt, Bytes, Entity, ethereum } from "@graphprotocol/graph-ts";
import {
  DefenderSet, GameDecided, OpDisputed, OpTraceCommitted, RowChunkPicked, RowChunkRevealed, RowHashesRevealed, RowPicked,
  RowRevealed, SpecAdmitted,
} from "../../generated/DisputeGame/DisputeGame";
import {
  FeeRecipientUpdated, FeesWithdrawn, JobCancelled, JobExpired, JobFinalized, ParametersUpdated, Paused,
  AuditorUpdated, PublisherUpdated, ResolverUpdated, RoleAdminChanged as MarketRoleAdminChanged, RoleGranted as MarketRoleGranted,
  RewardClaimed, RewardCollected, RewardPoolOpened, RoleRevoked as MarketRoleRevoked, Unpaused, Withdrawn,
  ZkCircuitRegistered, ZkResultAccepted,
} from "../../generated/JobMarket/JobMarket";
import {
  CollateralReleased, CollateralSeized, MarketBound, RoleAdminChanged as StakeRoleAdminChanged,
  RoleGranted as StakeRoleGranted, RoleRevoked as StakeRoleRevoked, Slashed, StakeWithdrawn, Staked,
  UnbondingDelayUpdated, UnstakeRequested,
} from "../../generated/StakeManager/StakeManager";
import {
  Account, AdmittedSpec, Challenge, ConfigChange, DisputeMove, Job, Market, MarketDayStat, MarketParameters, Provider,
  RewardPool, RewardShare, Role, RoleMember, Slash, Validator, Withdrawal, ZkCircuit,
} from "../../generated/schema";
import * as dg from "../../src/dispute-game";
import * as jm from "../../src/job-market";
import * as sm from "../../src/stake-manager";
import {
  a, account, addr, ADMIN, AUDIT_POOL, challenge, check, circuit, claim, DATA_AVAILABILITY, eqB, eqI, eqS, event, FEES, flag, GAME, gwei, job,
  market, MARKET, now, p, params, post, postZk, PROVER, REQUESTER, resolved, STAKE, submit, tx, txCount, u,
  VALIDATOR, VERIFIER, w, wei, word, WORKER,
} from "./support";

// ─── the store and the host's allocation helpers ───

const entities = new Map<string, Entity>();

export function storeSet(entity: string, id: string, data: Entity): void {
  entities.set(entity + "/" + id, data);
}

export function storeGet(entity: string, id: string): Entity | null {
  let key = entity + "/" + id;
  if (!entities.has(key)) return null;
  // graph-node hands out copies: a change without save() must not reach the store.
  let src = entities.get(key);
  let copy = new Entity();
  for (let i = 0; i < src.entries.length; i++) copy.set(src.entries[i].key, src.entries[i].value);
  return copy;
}

export function entityCount(): i32 {
  return entities.size;
}

export function newBytes(len: i32): Uint8Array {
  return new Uint8Array(len);
}

export function bytesToString(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, b.length);
}

export function stringToBytes(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

// ─── the scenario: deployment, then each path of the lifecycle ───

export function deployAndStake(): void {
  tx(0);
  sm.handleRoleGranted(changetype<StakeRoleGranted>(event(STAKE, [p("role", w(0)), p("account", a(ADMIN)), p("sender", a(ADMIN))])));
  sm.handleUnbondingDelayUpdated(changetype<UnbondingDelayUpdated>(event(STAKE, [p("oldDelay", u(0)), p("newDelay", u(1209600))])));
  tx(12);
  jm.handleRoleGranted(changetype<MarketRoleGranted>(event(MARKET, [p("role", w(0)), p("account", a(ADMIN)), p("sender", a(ADMIN))])));
  jm.handleFeeRecipientUpdated(changetype<FeeRecipientUpdated>(event(MARKET, [p("oldRecipient", a(addr(0))), p("newRecipient", a(FEES))])));
  jm.handleParametersUpdated(changetype<ParametersUpdated>(event(MARKET, [p("oldParams", params(0)), p("newParams", params(250))])));
  tx(12);
  sm.handleMarketBound(changetype<MarketBound>(event(STAKE, [p("market", a(MARKET))])));
  tx(12);
  jm.handleResolverUpdated(changetype<ResolverUpdated>(event(MARKET, [p("oldResolver", a(addr(0))), p("newResolver", a(GAME))])));
  tx(12);
  // DataAvailability becomes the market's publisher.
  jm.handlePublisherUpdated(changetype<PublisherUpdated>(event(MARKET, [p("oldPublisher", a(addr(0))), p("newPublisher", a(DATA_AVAILABILITY))])));
  let change = changetype<ConfigChange>(ConfigChange.load(word(0x100000 + txCount).concatI32(1)));
  eqS(change.kind, "PublisherUpdated", "publisher change recorded as a config change");
  eqS(changetype<Bytes>(change.previousAccount).toHexString(), addr(0).toHexString(), "no publisher before");
  eqS(changetype<Bytes>(change.account).toHexString(), DATA_AVAILABILITY.toHexString(), "config change names the publisher");
  tx(12);
  // The AuditPool, deployed after it, becomes the market's auditor.
  jm.handleAuditorUpdated(changetype<AuditorUpdated>(event(MARKET, [p("oldAuditor", a(addr(0))), p("newAuditor", a(AUDIT_POOL))])));
  change = changetype<ConfigChange>(ConfigChange.load(word(0x100000 + txCount).concatI32(1)));
  eqS(change.kind, "AuditorUpdated", "auditor change recorded as a config change");
  eqS(changetype<Bytes>(change.previousAccount).toHexString(), addr(0).toHexString(), "no auditor before");
  eqS(changetype<Bytes>(change.account).toHexString(), AUDIT_POOL.toHexString(), "config change names the auditor");
  tx(12);
  sm.handleStaked(changetype<Staked>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(gwei(1000000000))), p("totalStaked", wei(gwei(1000000000)))])));
  tx(12);
  sm.handleStaked(changetype<Staked>(event(STAKE, [p("account", a(VALIDATOR)), p("amount", wei(gwei(200000000))), p("totalStaked", wei(gwei(200000000)))])));

  let m = market();
  eqS(changetype<Bytes>(m.jobMarket).toHexString(), MARKET.toHexString(), "market address");
  eqS(changetype<Bytes>(m.stakeManager).toHexString(), STAKE.toHexString(), "stake manager");
  eqS(changetype<Bytes>(m.resolver).toHexString(), GAME.toHexString(), "resolver");
  eqS(changetype<Bytes>(m.publisher).toHexString(), DATA_AVAILABILITY.toHexString(), "publisher");
  eqS(changetype<Bytes>(m.auditor).toHexString(), AUDIT_POOL.toHexString(), "auditor");
  eqS(changetype<Bytes>(m.feeRecipient).toHexString(), FEES.toHexString(), "fee recipient");
  eqB(changetype<BigInt>(m.unbondingDelay), BigInt.fromI32(1209600), "unbonding delay");
  let current = MarketParameters.load(changetype<Bytes>(m.parameters));
  check(current !== null, "parameters indexed");
  eqI(changetype<MarketParameters>(current).protocolFeeBps, 250, "fee bps");
  eqB(m.totalStake, gwei(1200000000), "total stake");
  eqB(account(WORKER).staked, gwei(1000000000), "worker stake");
  check(RoleMember.load(MARKET.concat(word(0)).concat(ADMIN)) !== null, "market admin role member");
  check(RoleMember.load(STAKE.concat(word(0)).concat(ADMIN)) !== null, "stake manager admin role member");
}

/** Job 1: posted, claimed, submitted, challenged, the worker loses the game and its collateral. */
export function disputeWorkerLost(): void {
  let pay = gwei(1000000000);
  let collateral = gwei(500000000);
  let bond = gwei(10000000);
  tx(12);
  dg.handleSpecAdmitted(changetype<SpecAdmitted>(event(GAME, [p("specHash", w(0x5bec)), p("steps", u(100))])));
  check(AdmittedSpec.load(word(0x5bec)) !== null, "the admitted spec is stored");
  dg.handleDefenderSet(changetype<DefenderSet>(event(GAME, [p("worker", a(WORKER)), p("defender", a(addr(0x77)))])));
  check(changetype<Bytes>(changetype<Provider>(Provider.load(WORKER)).defender).equals(addr(0x77)), "the worker's watchtower");
  tx(12);
  post(1, pay);
  let j = job("1");
  eqS(j.status, "Posted", "job 1 posted");
  eqI(changetype<i32>(j.feeBps), 250, "job 1 fee snapshot");
  eqI(market().postedJobs, 1, "posted count");
  tx(12);
  claim(1, collateral);
  eqS(job("1").status, "Claimed", "job 1 claimed");
  eqB(account(WORKER).locked, collateral, "locked after claim");
  tx(12);
  submit(1);
  eqS(job("1").status, "Submitted", "job 1 submitted");
  tx(12);
  challenge(1, bond);
  j = job("1");
  eqS(j.status, "Disputed", "job 1 disputed");
  eqS(changetype<string>(j.openChallenge), "1-1", "open challenge");

  tx(12);
  dg.handleOpTraceCommitted(changetype<OpTraceCommitted>(event(GAME, [
    p("jobId", u(1)), p("opRoot", w(0x0900)), p("leaves", ethereum.Value.fromFixedBytesArray([word(1), word(2), word(3)])),
  ])));
  tx(12);
  dg.handleOpDisputed(changetype<OpDisputed>(event(GAME, [p("jobId", u(1)), p("leaf", u(2)), p("kind", ethereum.Value.fromI32(1)), p("rows", u(4)), p("cols", u(8))])));
  tx(12);
  dg.handleRowHashesRevealed(changetype<RowHashesRevealed>(event(GAME, [p("jobId", u(1)), p("rows", u(4))])));
  let c = changetype<Challenge>(Challenge.load("1-1"));
  eqS(changetype<string>(c.phase), "PickRow", "four rows: their hashes at once, then a row");
  tx(12);
  dg.handleRowPicked(changetype<RowPicked>(event(GAME, [p("jobId", u(1)), p("row", u(2))])));
  tx(12);
  dg.handleRowRevealed(changetype<RowRevealed>(event(GAME, [p("jobId", u(1)), p("row", u(2)), p("rowHash", w(0x4242))])));
  c = changetype<Challenge>(Challenge.load("1-1"));
  eqS(changetype<string>(c.phase), "NameElement", "phase after the row");
  tx(12);
  // One transaction: the game decides, the market settles, the stake manager seizes.
  dg.handleGameDecided(changetype<GameDecided>(event(GAME, [
    p("jobId", u(1)), p("workerLost", flag(true)), p("byTimeout", flag(false)),
    p("recomputed", ethereum.Value.fromSignedBigInt(BigInt.fromI32(-7))), p("claimed", ethereum.Value.fromSignedBigInt(BigInt.fromI32(5))),
  ])));
  let reward = gwei(250000000);
  // The conviction pools the reward and credits the challenger its bond alone.
  jm.handleRewardPoolOpened(changetype<RewardPoolOpened>(event(MARKET, [
    p("jobId", u(1)), p("reward", wei(reward)), p("claimEnd", u(now + 34560)),
  ])));
  resolved(1, true, false, bond, pay.plus(collateral.minus(reward)), 0);
  sm.handleCollateralSeized(changetype<CollateralSeized>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(collateral))])));

  j = job("1");
  eqS(j.status, "Resolved", "job 1 resolved");
  check(j.openChallenge === null, "no open challenge after resolution");
  c = changetype<Challenge>(Challenge.load("1-1"));
  eqS(c.outcome, "WorkerLost", "challenge outcome");
  eqS(changetype<string>(c.phase), "Decided", "phase decided");
  eqB(changetype<BigInt>(c.recomputed), BigInt.fromI32(-7), "recomputed element");
  eqI(c.moveCount, 7, "moves of the game");
  let move7 = DisputeMove.load(word(0x100000 + txCount).concatI32(1));
  check(move7 !== null, "GameDecided move stored");
  eqS(changetype<DisputeMove>(move7).kind, "GameDecided", "last move kind");
  eqI(changetype<DisputeMove>(move7).index, 7, "last move index");
  // GameDecided, RewardPoolOpened, DisputeResolved, then the seizure.
  let slash = Slash.load(word(0x100000 + txCount).concatI32(4));
  check(slash !== null, "slash stored");
  let s = changetype<Slash>(slash);
  eqS(s.reason, "DisputeLost", "slash reason");
  eqS(changetype<string>(s.job), "1", "slash job");
  let wacc = account(WORKER);
  eqB(wacc.locked, BigInt.zero(), "worker locked after seizure");
  eqB(wacc.staked, gwei(500000000), "worker stake after seizure");
  eqB(wacc.totalSlashed, collateral, "worker slashed total");
  let prov = changetype<Provider>(Provider.load(WORKER));
  eqI(prov.disputesLost, 1, "provider disputes lost");
  eqB(prov.collateralLocked, BigInt.zero(), "provider collateral after loss");
  eqB(prov.collateralSeized, collateral, "provider collateral seized");
  // A validator that committed before the conviction joins; both collect after the period.
  let other = addr(0x08);
  tx(12);
  jm.handleRewardClaimed(changetype<RewardClaimed>(event(MARKET, [p("jobId", u(1)), p("claimant", a(other)), p("claimants", u(2))])));
  eqI(changetype<RewardPool>(RewardPool.load("1")).claimants, 2, "two claimants");
  tx(34560);
  let half = reward.div(BigInt.fromI32(2));
  for (let i = 0; i < 2; i++) {
    jm.handleRewardCollected(changetype<RewardCollected>(event(MARKET, [
      p("jobId", u(1)), p("claimant", a(i == 0 ? VALIDATOR : other)), p("share", wei(i == 0 ? half : reward.minus(half))),
    ])));
  }
  let pool = changetype<RewardPool>(RewardPool.load("1"));
  eqB(pool.remaining, BigInt.zero(), "the pool is emptied");
  let share = RewardShare.load("1-" + other.toHexString());
  check(share !== null && share.claimedAt !== null, "the second claimant's share");
  eqB(account(other).totalCredited, reward.minus(half), "the second claimant's credit");
  let v = changetype<Validator>(Validator.load(VALIDATOR));
  eqI(v.challengesWon, 1, "validator wins");
  eqB(v.earnings, half, "validator earnings: its share");
  eqB(account(VALIDATOR).totalCredited, bond.plus(half), "validator credit");
  let m = market();
  eqI(m.resolvedJobs, 1, "resolved count");
  eqI(m.disputedJobs, 0, "disputed count");
  eqI(m.postedJobs, 0, "posted count after claim");
}

/** Job 2 is cancelled; job 3 expires with a penalty. */
export function cancelAndExpire(): void {
  let pay = gwei(100000000);
  tx(12);
  post(2, pay);
  tx(12);
  jm.handleJobCancelled(changetype<JobCancelled>(event(MARKET, [p("jobId", u(2)), p("refund", wei(pay))])));
  let j = job("2");
  eqS(j.status, "Cancelled", "job 2 cancelled");
  check(j.cancelledAt !== null, "cancel time");

  let collateral = gwei(50000000);
  let penalty = gwei(25000000);
  tx(12);
  post(3, pay);
  tx(12);
  claim(3, collateral);
  tx(8000);
  jm.handleJobExpired(changetype<JobExpired>(event(MARKET, [p("jobId", u(3)), p("worker", a(WORKER)), p("refund", wei(pay)), p("penalty", wei(penalty))])));
  sm.handleCollateralSeized(changetype<CollateralSeized>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(penalty))])));
  sm.handleCollateralReleased(changetype<CollateralReleased>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(collateral.minus(penalty)))])));
  j = job("3");
  eqS(j.status, "Expired", "job 3 expired");
  eqB(changetype<BigInt>(j.penalty), penalty, "job 3 penalty");
  let s = changetype<Slash>(Slash.load(word(0x100000 + txCount).concatI32(2)));
  eqS(s.reason, "Expiry", "expiry slash reason");
  eqS(changetype<string>(s.job), "3", "expiry slash job");
  eqB(account(WORKER).locked, BigInt.zero(), "nothing locked after expiry");
  eqB(account(REQUESTER).totalCredited, pay.plus(pay).plus(penalty).plus(gwei(1000000000)).plus(gwei(250000000)), "requester credit");
  let prov = changetype<Provider>(Provider.load(WORKER));
  eqI(prov.jobsExpired, 1, "provider expiries");
  eqB(prov.penalties, penalty, "provider penalties");
}

/** Job 4: a challenge times out, the worker wins the bond and the job finalizes. */
export function timeoutThenFinalize(): void {
  let pay = gwei(400000000);
  let collateral = gwei(200000000);
  let bond = gwei(10000000);
  tx(12);
  post(4, pay);
  tx(12);
  claim(4, collateral);
  tx(12);
  submit(4);
  tx(12);
  challenge(4, bond);
  let moves = changetype<Challenge>(Challenge.load("4-1")).moveCount;
  // The game over an output of 1 500 rows, more than one chunk of 1 024 (GameBase): the worker
  // reveals the chunks' two nodes, the challenger picks the second, the worker reveals its row
  // hashes, and the challenger's clock runs out before it picks a row.
  tx(12);
  dg.handleOpDisputed(changetype<OpDisputed>(event(GAME, [p("jobId", u(4)), p("leaf", u(3)), p("kind", ethereum.Value.fromI32(1)), p("rows", u(1500)), p("cols", u(8))])));
  tx(12);
  dg.handleRowHashesRevealed(changetype<RowHashesRevealed>(event(GAME, [p("jobId", u(4)), p("rows", u(2))])));
  let g = changetype<Challenge>(Challenge.load("4-1"));
  eqS(changetype<string>(g.phase), "PickRowChunk", "1 500 rows: a chunk of rows first");
  tx(12);
  dg.handleRowChunkPicked(changetype<RowChunkPicked>(event(GAME, [p("jobId", u(4)), p("chunk", u(1))])));
  g = changetype<Challenge>(Challenge.load("4-1"));
  eqS(changetype<string>(g.phase), "RevealRowChunk", "the worker reveals the chunk");
  eqB(changetype<BigInt>(g.pickedRowChunk), BigInt.fromI32(1), "the picked chunk of rows");
  tx(12);
  dg.handleRowChunkRevealed(changetype<RowChunkRevealed>(event(GAME, [p("jobId", u(4)), p("chunk", u(1))])));
  g = changetype<Challenge>(Challenge.load("4-1"));
  eqS(changetype<string>(g.phase), "PickRow", "then a row of it");
  let last = DisputeMove.load(word(0x100000 + txCount).concatI32(1));
  eqS(changetype<DisputeMove>(last).kind, "RowChunkRevealed", "the chunk's move");
  eqI(g.moveCount, moves + 4, "the op, the chunks' nodes, the chunk picked and revealed");
  tx(90000 - 4 * 12); // the scenarios after this one keep their times
  resolved(4, false, true, BigInt.zero(), BigInt.zero(), now + 600);
  let j = job("4");
  eqS(j.status, "Submitted", "job 4 back to submitted");
  eqS(changetype<Challenge>(Challenge.load("4-1")).outcome, "TimedOut", "challenge timed out");
  tx(700);
  let fee = gwei(10000000);
  jm.handleJobFinalized(changetype<JobFinalized>(event(MARKET, [p("jobId", u(4)), p("worker", a(WORKER)), p("workerPayout", wei(pay.minus(fee))), p("fee", wei(fee))])));
  sm.handleCollateralReleased(changetype<CollateralReleased>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(collateral))])));
  j = job("4");
  eqS(j.status, "Finalized", "job 4 finalized");
  let prov = changetype<Provider>(Provider.load(WORKER));
  eqB(prov.bondsWon, bond, "bond won");
  eqB(prov.earnings, pay.minus(fee).plus(bond), "provider earnings");
  eqB(prov.collateralLocked, BigInt.zero(), "provider collateral after finalize");
  eqI(prov.jobsClaimed, 3, "provider claims");
  let v = changetype<Validator>(Validator.load(VALIDATOR));
  eqI(v.challengesTimedOut, 1, "validator timeouts");
  eqB(v.bondsLost, bond, "validator bonds lost");
  let m = market();
  eqI(m.finalizedJobs, 1, "finalized count");
  eqI(m.submittedJobs, 0, "submitted count");
  eqB(m.totalFees, fee, "fees");
  eqB(m.totalLocked, BigInt.zero(), "market locked");
}

/**
 * The admin registers zk circuit 1. Job 5, a zk job, is proven by an account the subgraph has not
 * seen: Posted straight to Finalized, paid directly (no credit). Job 6, a zk job, is cancelled.
 */
export function zkProveAndCancel(): void {
  let before = market();
  let requesterCredit = account(REQUESTER).totalCredited;
  tx(12);
  jm.handleZkCircuitRegistered(changetype<ZkCircuitRegistered>(event(MARKET, [p("circuit", ethereum.Value.fromI32(1)), p("verifier", a(VERIFIER))])));
  let zc = circuit("1");
  eqI(zc.circuit, 1, "circuit number");
  eqS(zc.verifier.toHexString(), VERIFIER.toHexString(), "circuit verifier");
  eqB(zc.registeredAt, BigInt.fromI64(now), "circuit registration time");
  eqS(zc.registeredTx.toHexString(), word(0x100000 + txCount).toHexString(), "circuit registration tx");
  let change = changetype<ConfigChange>(ConfigChange.load(word(0x100000 + txCount).concatI32(1)));
  eqS(change.kind, "ZkCircuitRegistered", "circuit registration recorded as a config change");
  eqS(changetype<string>(change.zkCircuit), "1", "config change links the circuit");
  eqS(changetype<Bytes>(change.account).toHexString(), VERIFIER.toHexString(), "config change names the verifier");

  let pay = gwei(300000000);
  let fee = gwei(7500000); // the 250 bps snapshotted at posting
  let payout = pay.minus(fee);
  tx(12);
  postZk(5, pay, 1);
  let j = job("5");
  eqS(j.status, "Posted", "zk job 5 posted");
  eqI(j.verification, 1, "zk job 5 verification");
  eqI(j.zkCircuit, 1, "zk job 5 circuit number");
  eqS(changetype<string>(j.circuit), "1", "zk job 5 links its circuit");
  eqS(j.specHash.toHexString(), word(0xc10b).toHexString(), "zk job 5 commitment");
  eqB(j.challengeWindow, BigInt.zero(), "zk job 5 has no window");
  eqI(circuit("1").jobCount, 1, "circuit jobs after the first zk post");
  eqI(market().zkJobCount, 1, "zk job count");
  eqI(market().postedJobs, before.postedJobs + 1, "posted count with a zk job");
  check(Account.load(PROVER) === null && Provider.load(PROVER) === null, "the prover is unknown before its proof");

  tx(12);
  // submitZkResult: one transaction, ZkResultAccepted then JobFinalized; no claim, no submission.
  jm.handleZkResultAccepted(changetype<ZkResultAccepted>(event(MARKET, [
    p("jobId", u(5)), p("worker", a(PROVER)), p("outputCommitment", w(0x0c07)),
    p("resultCid", ethereum.Value.fromBytes(Bytes.fromHexString("0x01551220dd"))),
  ])));
  jm.handleJobFinalized(changetype<JobFinalized>(event(MARKET, [p("jobId", u(5)), p("worker", a(PROVER)), p("workerPayout", wei(payout)), p("fee", wei(fee))])));
  j = job("5");
  eqS(j.status, "Finalized", "zk job 5 finalized");
  eqS(changetype<Bytes>(j.worker).toHexString(), PROVER.toHexString(), "zk job 5 worker");
  eqS(changetype<Bytes>(j.outputCommitment).toHexString(), word(0x0c07).toHexString(), "zk job 5 output commitment");
  eqS(changetype<Bytes>(j.resultCid).toHexString(), "0x01551220dd", "zk job 5 result CID");
  eqB(changetype<BigInt>(j.workerPayout), payout, "zk job 5 payout");
  eqB(changetype<BigInt>(j.fee), fee, "zk job 5 fee");
  eqB(changetype<BigInt>(j.finalizedAt), BigInt.fromI64(now), "zk job 5 finalization time");
  check(j.claimedAt === null && j.submittedAt === null && j.collateral === null, "zk job 5 was never claimed or submitted");
  let prov = changetype<Provider>(Provider.load(PROVER));
  eqI(prov.zkJobsProven, 1, "prover zk proofs");
  eqI(prov.jobsFinalized, 1, "prover finalized jobs");
  eqI(prov.jobsClaimed, 0, "prover claims");
  eqB(prov.earnings, payout, "prover earnings");
  eqB(prov.paymentsEarned, payout, "prover payments earned");
  eqB(prov.collateralLocked, BigInt.zero(), "prover collateral");
  eqB(prov.firstClaimAt, BigInt.fromI64(now), "prover first seen at its proof");
  let pacc = account(PROVER);
  eqB(pacc.totalCredited, BigInt.zero(), "a zk payout is paid, not credited");
  eqS(changetype<Bytes>(pacc.provider).toHexString(), PROVER.toHexString(), "prover account links its provider");
  zc = circuit("1");
  eqI(zc.jobsFinalized, 1, "circuit finalized jobs");

  tx(12);
  postZk(6, pay, 1);
  tx(12);
  jm.handleJobCancelled(changetype<JobCancelled>(event(MARKET, [p("jobId", u(6)), p("refund", wei(pay))])));
  j = job("6");
  eqS(j.status, "Cancelled", "zk job 6 cancelled");
  eqB(changetype<BigInt>(j.refund), pay, "zk job 6 refund");
  check(j.worker === null && j.outputCommitment === null, "zk job 6 has no worker or output");
  zc = circuit("1");
  eqI(zc.jobCount, 2, "circuit jobs");
  eqI(zc.jobsFinalized, 1, "circuit finalized jobs after the cancel");
  eqB(account(REQUESTER).totalCredited, requesterCredit.plus(pay), "a zk refund is credited like any other");

  let m = market();
  eqI(m.zkJobCount, 2, "zk jobs posted");
  eqB(m.jobCount, BigInt.fromI32(6), "job count");
  eqI(m.postedJobs, before.postedJobs, "posted count after the zk jobs");
  eqI(m.finalizedJobs, before.finalizedJobs + 1, "finalized count");
  eqI(m.cancelledJobs, before.cancelledJobs + 1, "cancelled count");
  eqB(m.totalPayments, before.totalPayments.plus(pay).plus(pay), "payments");
  eqB(m.totalWorkerPayouts, before.totalWorkerPayouts.plus(payout), "worker payouts");
  eqB(m.totalFees, before.totalFees.plus(fee), "fees");
  eqB(m.totalRefunds, before.totalRefunds.plus(pay), "refunds");
  eqB(m.totalLocked, before.totalLocked, "a zk job locks no collateral");
}

/** Payouts, stake exits, a slash and the admin events. */
export function payoutsAndAdmin(): void {
  tx(12);
  jm.handleWithdrawn(changetype<Withdrawn>(event(MARKET, [p("account", a(WORKER)), p("amount", wei(gwei(400000000)))])));
  jm.handleFeesWithdrawn(changetype<FeesWithdrawn>(event(MARKET, [p("recipient", a(FEES)), p("amount", wei(gwei(10000000)))])));
  let wd = Withdrawal.load(word(0x100000 + txCount).concatI32(2));
  check(wd !== null, "fee withdrawal stored");
  eqS(changetype<Withdrawal>(wd).kind, "Fees", "withdrawal kind");
  eqB(account(WORKER).totalWithdrawn, gwei(400000000), "worker withdrawn");
  tx(12);
  sm.handleUnstakeRequested(changetype<UnstakeRequested>(event(STAKE, [p("account", a(VALIDATOR)), p("amount", wei(gwei(100000000))), p("unbondsAt", u(now + 1209600))])));
  tx(12);
  sm.handleSlashed(changetype<Slashed>(event(STAKE, [p("account", a(VALIDATOR)), p("slasher", a(GAME)), p("amount", wei(gwei(150000000)))])));
  let acc = account(VALIDATOR);
  eqB(acc.staked, BigInt.zero(), "free stake slashed first");
  eqB(acc.unbonding, gwei(50000000), "then unbonding stake");
  tx(1209600);
  sm.handleStakeWithdrawn(changetype<StakeWithdrawn>(event(STAKE, [p("account", a(VALIDATOR)), p("amount", wei(gwei(50000000)))])));
  acc = account(VALIDATOR);
  eqB(acc.unbonding, BigInt.zero(), "unbonding after withdrawal");
  check(acc.unbondsAt === null, "unbondsAt cleared");
  eqB(market().totalStake, gwei(500000000).minus(gwei(25000000)), "total stake at the end");

  tx(12);
  jm.handlePaused(changetype<Paused>(event(MARKET, [p("account", a(ADMIN))])));
  check(market().paused, "paused");
  jm.handleUnpaused(changetype<Unpaused>(event(MARKET, [p("account", a(ADMIN))])));
  check(!market().paused, "unpaused");
  let change = ConfigChange.load(word(0x100000 + txCount).concatI32(2));
  eqS(changetype<ConfigChange>(change).kind, "Unpaused", "config change kind");
  jm.handleRoleAdminChanged(changetype<MarketRoleAdminChanged>(event(MARKET, [p("role", w(7)), p("previousAdminRole", w(0)), p("newAdminRole", w(8))])));
  eqS(changetype<Role>(Role.load(MARKET.concat(word(7)))).adminRole.toHexString(), word(8).toHexString(), "market role admin");
  jm.handleRoleRevoked(changetype<MarketRoleRevoked>(event(MARKET, [p("role", w(0)), p("account", a(ADMIN)), p("sender", a(ADMIN))])));
  check(!changetype<RoleMember>(RoleMember.load(MARKET.concat(word(0)).concat(ADMIN))).active, "market admin revoked");
  sm.handleRoleAdminChanged(changetype<StakeRoleAdminChanged>(event(STAKE, [p("role", w(9)), p("previousAdminRole", w(0)), p("newAdminRole", w(0))])));
  sm.handleRoleRevoked(changetype<StakeRoleRevoked>(event(STAKE, [p("role", w(0)), p("account", a(ADMIN)), p("sender", a(ADMIN))])));
  check(!changetype<RoleMember>(RoleMember.load(STAKE.concat(word(0)).concat(ADMIN))).active, "stake admin revoked");
}

/** Every day's statistics add up to the totals, and the per-status counts to the jobs posted. */
export function dailyStats(): void {
  let posted = 0;
  let zkPosted = 0;
  let zkAccepted = 0;
  let finalized = 0;
  let cancelled = 0;
  let payments = BigInt.zero();
  let payouts = BigInt.zero();
  let fees = BigInt.zero();
  let refunds = BigInt.zero();
  let seized = BigInt.zero();
  let demands = 0;
  let demandsMet = 0;
  let demandsUnmet = 0;
  let demandBonds = BigInt.zero();
  let demanderPayouts = BigInt.zero();
  let first = i32(1700000000 / 86400);
  let last = i32(now / 86400);
  for (let d = first; d <= last; d++) {
    let s = MarketDayStat.load(d.toString());
    if (s === null) continue;
    check(s.date == d * 86400, "day start");
    posted += s.jobsPosted;
    zkPosted += s.zkJobsPosted;
    zkAccepted += s.zkResultsAccepted;
    finalized += s.jobsFinalized;
    cancelled += s.jobsCancelled;
    payments = payments.plus(s.paymentsPosted);
    payouts = payouts.plus(s.workerPayouts);
    fees = fees.plus(s.protocolFees);
    refunds = refunds.plus(s.refunds);
    seized = seized.plus(s.collateralSeized);
    demands += s.dataDemands;
    demandsMet += s.dataDemandsMet;
    demandsUnmet += s.dataDemandsUnmet;
    demandBonds = demandBonds.plus(s.demandBonds);
    demanderPayouts = demanderPayouts.plus(s.demanderPayouts);
  }
  let m = market();
  eqI(posted, 8, "jobs posted over the days");
  eqI(zkPosted, m.zkJobCount, "zk jobs posted over the days");
  eqI(zkAccepted, 1, "zk proofs accepted over the days");
  eqI(finalized, m.finalizedJobs, "jobs finalized over the days");
  eqI(finalized, 3, "two optimistic jobs and a zk job finalized");
  eqI(cancelled, m.cancelledJobs, "jobs cancelled over the days");
  eqB(payments, m.totalPayments, "payments over the days");
  eqB(payouts, m.totalWorkerPayouts, "worker payouts over the days");
  eqB(fees, m.totalFees, "fees over the days");
  eqB(refunds, m.totalRefunds, "refunds over the days");
  eqB(seized, m.totalCollateralSeized, "seized over the days");
  eqI(demands, m.demandCount, "data demands over the days");
  eqI(demandsMet, m.demandsMet, "demands met over the days");
  eqI(demandsUnmet, m.demandsUnmet, "demands unmet over the days");
  eqI(demands, 3, "three demands made");
  eqB(demandBonds, m.totalDemandBonds, "demand bonds over the days");
  eqB(demanderPayouts, m.totalDemanderPayouts, "demander payouts over the days");
  let statuses = m.postedJobs + m.claimedJobs + m.submittedJobs + m.disputedJobs + m.finalizedJobs +
    m.cancelledJobs + m.expiredJobs + m.resolvedJobs + m.demandedJobs;
  eqI(statuses, m.jobCount.toI32(), "every job is counted in exactly one status");
  check(last > first, "the scenario spans several days");
}
