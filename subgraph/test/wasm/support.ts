// SPDX-License-Identifier: Apache-2.0
// What the scenarios of test/wasm/ share: the accounts, a clock of transactions, events built from
// ethereum.Values as graph-node would pass them, the common steps of a job (post, claim, submit,
// challenge) and the checks, whose failure aborts with their message.

import { Address, BigInt, Bytes, ethereum } from "@graphprotocol/graph-ts";
import { GameStarted } from "../../generated/DisputeGame/DisputeGame";
import {
  ChallengeCommitted, ChallengeOpened, DisputeResolved, JobClaimed, JobPosted, ResultSubmitted, ZkJobPosted,
} from "../../generated/JobMarket/JobMarket";
import { CollateralLocked } from "../../generated/StakeManager/StakeManager";
import { Account, Job, Market, ZkCircuit } from "../../generated/schema";
import * as dg from "../../src/dispute-game";
import * as jm from "../../src/job-market";
import * as sm from "../../src/stake-manager";

// ─── events ───

export const MARKET = addr(0xa1);
export const STAKE = addr(0xa2);
export const GAME = addr(0xa3);
// The market's publisher: where demanded data is published (DataAvailability).
export const DATA_AVAILABILITY = addr(0xa4);
// The market's auditor: the audit pool that finalized jobs with an audit root fund.
export const AUDIT_POOL = addr(0xa5);
export const ADMIN = addr(0x01);
export const REQUESTER = addr(0x02);
export const WORKER = addr(0x03);
export const VALIDATOR = addr(0x04);
export const FEES = addr(0x05);
// Proves zk jobs only: it never stakes, claims or gets credit, so its entities start at the proof.
export const PROVER = addr(0x06);
export const VERIFIER = addr(0xb1);
export const GWEI = BigInt.fromI64(1000000000);

export let txCount: i32 = 0;
let logIndex: i32 = 0;
export let now: i64 = 1700000000;

export function addr(n: i32): Address {
  let hex = n.toString(16);
  while (hex.length < 40) hex = "0" + hex;
  return changetype<Address>(Bytes.fromHexString("0x" + hex));
}

export function word(n: i32): Bytes {
  let hex = n.toString(16);
  while (hex.length < 64) hex = "0" + hex;
  return Bytes.fromHexString("0x" + hex);
}

export function gwei(n: i64): BigInt {
  return BigInt.fromI64(n).times(GWEI);
}

/** Starts a new transaction, `secs` seconds after the last one. */
export function tx(secs: i64): void {
  txCount += 1;
  logIndex = 0;
  now += secs;
}

export function event(address: Address, params: Array<ethereum.EventParam>): ethereum.Event {
  let z = BigInt.zero();
  let b = BigInt.fromI64(now / 12);
  let block = new ethereum.Block(word(txCount), word(0), word(0), ADMIN, word(0), word(0), word(0), b, z, z,
    BigInt.fromI64(now), z, z, null, null);
  let t = new ethereum.Transaction(word(0x100000 + txCount), z, ADMIN, address, z, z, z, Bytes.empty(), z);
  logIndex += 1;
  return new ethereum.Event(address, BigInt.fromI32(logIndex), z, null, block, t, params, null);
}

export function p(name: string, v: ethereum.Value): ethereum.EventParam {
  return new ethereum.EventParam(name, v);
}
export function u(n: i64): ethereum.Value {
  return ethereum.Value.fromUnsignedBigInt(BigInt.fromI64(n));
}
export function wei(v: BigInt): ethereum.Value {
  return ethereum.Value.fromUnsignedBigInt(v);
}
export function a(x: Address): ethereum.Value {
  return ethereum.Value.fromAddress(x);
}
export function w(n: i32): ethereum.Value {
  return ethereum.Value.fromFixedBytes(word(n));
}
export function flag(b: bool): ethereum.Value {
  return ethereum.Value.fromBoolean(b);
}

export function params(fee: i32): ethereum.Value {
  let t = new ethereum.Tuple();
  t.push(ethereum.Value.fromI32(fee));
  t.push(ethereum.Value.fromI32(5000));
  t.push(ethereum.Value.fromI32(5000));
  t.push(ethereum.Value.fromI32(5000));
  t.push(u(60));
  t.push(u(604800));
  t.push(u(86400));
  t.push(wei(gwei(10000000)));
  t.push(wei(gwei(100000000)));
  t.push(wei(gwei(100000000)));
  return ethereum.Value.fromTuple(t);
}

/** JobPosted with IJobMarket.JobRequest: spec hash, model and dataset CIDs, steps, verification, deadlines, window. */
export function jobPosted(jobId: i64, payment: BigInt, specHash: i32, verification: i32, challengeWindow: i64): void {
  let r = new ethereum.Tuple();
  r.push(w(specHash));
  r.push(ethereum.Value.fromBytes(Bytes.fromHexString("0x01551220aa")));
  r.push(ethereum.Value.fromBytes(Bytes.fromHexString("0x01551220bb")));
  r.push(u(10));
  r.push(ethereum.Value.fromI32(verification));
  r.push(u(now + 3600));
  r.push(u(now + 7200));
  r.push(u(challengeWindow));
  jm.handleJobPosted(changetype<JobPosted>(event(MARKET, [
    p("jobId", u(jobId)), p("requester", a(REQUESTER)), p("payment", wei(payment)),
    p("request", ethereum.Value.fromTuple(r)),
  ])));
}

export function post(jobId: i64, payment: BigInt): void {
  jobPosted(jobId, payment, 0x5bec, 0, 600);
}

/** postZkJob: JobPosted (Zk, the spec hash is the job commitment, no window), then ZkJobPosted. */
export function postZk(jobId: i64, payment: BigInt, circuit: i32): void {
  jobPosted(jobId, payment, 0xc10b, 1, 0);
  jm.handleZkJobPosted(changetype<ZkJobPosted>(event(MARKET, [p("jobId", u(jobId)), p("circuit", ethereum.Value.fromI32(circuit))])));
}

export function claim(jobId: i64, collateral: BigInt): void {
  jm.handleJobClaimed(changetype<JobClaimed>(event(MARKET, [
    p("jobId", u(jobId)), p("worker", a(WORKER)), p("collateral", wei(collateral)),
  ])));
  sm.handleCollateralLocked(changetype<CollateralLocked>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(collateral))])));
}

export function submit(jobId: i64): void {
  jm.handleResultSubmitted(changetype<ResultSubmitted>(event(MARKET, [
    p("jobId", u(jobId)), p("worker", a(WORKER)), p("steps", u(10)), p("traceRoot", w(0x7007)),
    p("finalStateHash", w(0xf1a1)), p("resultCid", ethereum.Value.fromBytes(Bytes.fromHexString("0x01551220cc"))),
    p("windowEnd", u(now + 600)),
  ])));
}

export function challenge(jobId: i64, bond: BigInt): void {
  jm.handleChallengeCommitted(changetype<ChallengeCommitted>(event(MARKET, [
    p("jobId", u(jobId)), p("committer", a(VALIDATOR)), p("commitment", w(0xc0)),
  ])));
  tx(12);
  jm.handleChallengeOpened(changetype<ChallengeOpened>(event(MARKET, [
    p("jobId", u(jobId)), p("challenger", a(VALIDATOR)), p("step", u(3)), p("claimedStateHash", w(0xbad)),
    p("bond", wei(bond)), p("resolver", a(GAME)), p("deadline", u(now + 86400)),
  ])));
  dg.handleGameStarted(changetype<GameStarted>(event(GAME, [
    p("jobId", u(jobId)), p("step", u(3)), p("worker", a(WORKER)), p("challenger", a(VALIDATOR)), p("clock", u(34560)),
  ])));
}

export function resolved(jobId: i64, workerLost: bool, timedOut: bool, toChallenger: BigInt, toRequester: BigInt, windowEnd: i64): void {
  jm.handleDisputeResolved(changetype<DisputeResolved>(event(MARKET, [
    p("jobId", u(jobId)), p("workerLost", flag(workerLost)), p("timedOut", flag(timedOut)),
    p("challengerPayout", wei(toChallenger)), p("requesterPayout", wei(toRequester)), p("windowEnd", u(windowEnd)),
  ])));
}

// ─── checks ───

export function check(ok: bool, what: string): void {
  if (!ok) abort(what);
}
export function eqS(actual: string, expected: string, what: string): void {
  check(actual == expected, what + ": got " + actual + ", want " + expected);
}
export function eqI(actual: i32, expected: i32, what: string): void {
  check(actual == expected, what + ": got " + actual.toString() + ", want " + expected.toString());
}
export function eqB(actual: BigInt, expected: BigInt, what: string): void {
  eqS(actual.toString(), expected.toString(), what);
}
export function job(id: string): Job {
  let j = Job.load(id);
  check(j !== null, "job " + id + " exists");
  return changetype<Job>(j);
}
export function account(x: Address): Account {
  let acc = Account.load(x);
  check(acc !== null, "account " + x.toHexString() + " exists");
  return changetype<Account>(acc);
}
export function market(): Market {
  return changetype<Market>(Market.load("market"));
}
export function circuit(id: string): ZkCircuit {
  let c = ZkCircuit.load(id);
  check(c !== null, "zk circuit " + id + " exists");
  return changetype<ZkCircuit>(c);
}
