// SPDX-License-Identifier: Apache-2.0
// Loading-or-creating of the shared entities, and the bookkeeping every mapping repeats.

import { Address, BigInt, Bytes, ethereum } from "@graphprotocol/graph-ts";
import {
  Account,
  Job,
  Market,
  MarketDayStat,
  Provider,
  Role,
  RoleMember,
  Validator,
} from "../generated/schema";

export const MARKET_ID = "market";
const SECONDS_PER_DAY = 86400;
const ZERO_ROLE = Bytes.fromHexString("0x0000000000000000000000000000000000000000000000000000000000000000");

export function zero(): BigInt {
  return BigInt.zero();
}

/** Id of an entity one event creates: transaction hash ++ log index. */
export function eventId(event: ethereum.Event): Bytes {
  return event.transaction.hash.concatI32(event.logIndex.toI32());
}

export function getMarket(): Market {
  let m = Market.load(MARKET_ID);
  if (m === null) {
    m = new Market(MARKET_ID);
    m.paused = false;
    m.jobCount = zero();
    m.zkJobCount = 0;
    m.postedJobs = 0;
    m.claimedJobs = 0;
    m.submittedJobs = 0;
    m.disputedJobs = 0;
    m.finalizedJobs = 0;
    m.cancelledJobs = 0;
    m.expiredJobs = 0;
    m.resolvedJobs = 0;
    m.demandedJobs = 0;
    m.challengeCount = 0;
    m.demandCount = 0;
    m.demandsMet = 0;
    m.demandsUnmet = 0;
    m.totalPayments = zero();
    m.totalWorkerPayouts = zero();
    m.totalFees = zero();
    m.totalFeesWithdrawn = zero();
    m.totalRefunds = zero();
    m.totalPenalties = zero();
    m.totalBonds = zero();
    m.totalChallengerPayouts = zero();
    m.totalDemandBonds = zero();
    m.totalDemanderPayouts = zero();
    m.totalCollateralSeized = zero();
    m.totalSlashed = zero();
    m.totalStake = zero();
    m.totalLocked = zero();
  }
  return m;
}

/** Moves the market's per-status count of a job from `from` (null for a new job) to `to`. */
export function countStatus(m: Market, from: string | null, to: string): void {
  if (from !== null) addStatus(m, from, -1);
  addStatus(m, to, 1);
}

function addStatus(m: Market, status: string, d: i32): void {
  if (status == "Posted") m.postedJobs += d;
  else if (status == "Claimed") m.claimedJobs += d;
  else if (status == "Submitted") m.submittedJobs += d;
  else if (status == "Disputed") m.disputedJobs += d;
  else if (status == "Finalized") m.finalizedJobs += d;
  else if (status == "Cancelled") m.cancelledJobs += d;
  else if (status == "Expired") m.expiredJobs += d;
  else if (status == "Resolved") m.resolvedJobs += d;
  else if (status == "Demanded") m.demandedJobs += d;
}

/** Sets a job's status and keeps the market's counts in step (the caller saves the market). */
export function setStatus(job: Job, m: Market, status: string, event: ethereum.Event): void {
  countStatus(m, job.status, status);
  job.status = status;
  job.updatedAt = event.block.timestamp;
}

export function getDay(event: ethereum.Event): MarketDayStat {
  let day = event.block.timestamp.toI32() / SECONDS_PER_DAY;
  let id = day.toString();
  let s = MarketDayStat.load(id);
  if (s === null) {
    s = new MarketDayStat(id);
    s.date = day * SECONDS_PER_DAY;
    s.jobsPosted = 0;
    s.zkJobsPosted = 0;
    s.jobsCancelled = 0;
    s.jobsClaimed = 0;
    s.resultsSubmitted = 0;
    s.zkResultsAccepted = 0;
    s.jobsFinalized = 0;
    s.jobsExpired = 0;
    s.challengeCommitments = 0;
    s.challengesOpened = 0;
    s.disputesResolved = 0;
    s.disputesWorkerLost = 0;
    s.disputesTimedOut = 0;
    s.disputeMoves = 0;
    s.dataDemands = 0;
    s.dataDemandsMet = 0;
    s.dataDemandsUnmet = 0;
    s.paymentsPosted = zero();
    s.workerPayouts = zero();
    s.protocolFees = zero();
    s.refunds = zero();
    s.penalties = zero();
    s.bondsPosted = zero();
    s.challengerPayouts = zero();
    s.demandBonds = zero();
    s.demanderPayouts = zero();
    s.collateralSeized = zero();
    s.stakeSlashed = zero();
    s.stakeDeposited = zero();
    s.stakeWithdrawn = zero();
    s.creditsWithdrawn = zero();
    s.feesWithdrawn = zero();
  }
  return s;
}

export function getAccount(address: Address): Account {
  let a = Account.load(address);
  if (a === null) {
    a = new Account(address);
    a.staked = zero();
    a.locked = zero();
    a.unbonding = zero();
    a.totalStakeDeposited = zero();
    a.totalStakeWithdrawn = zero();
    a.totalSlashed = zero();
    a.totalCredited = zero();
    a.totalWithdrawn = zero();
    a.save();
  }
  return a;
}

/** Credits `amount` of market credit to `address` (a pull payout). */
export function credit(address: Address, amount: BigInt): void {
  if (amount.isZero()) return;
  let a = getAccount(address);
  a.totalCredited = a.totalCredited.plus(amount);
  a.save();
}

export function getProvider(address: Address, event: ethereum.Event): Provider {
  let p = Provider.load(address);
  if (p === null) {
    let a = getAccount(address);
    p = new Provider(address);
    p.account = a.id;
    p.jobsClaimed = 0;
    p.jobsSubmitted = 0;
    p.zkJobsProven = 0;
    p.jobsFinalized = 0;
    p.jobsExpired = 0;
    p.disputesWon = 0;
    p.disputesLost = 0;
    p.demandsMet = 0;
    p.demandsUnmet = 0;
    p.earnings = zero();
    p.paymentsEarned = zero();
    p.bondsWon = zero();
    p.collateralLocked = zero();
    p.collateralSeized = zero();
    p.penalties = zero();
    p.firstClaimAt = event.block.timestamp;
    a.provider = p.id;
    a.save();
  }
  return p;
}

export function getValidator(address: Address): Validator {
  let v = Validator.load(address);
  if (v === null) {
    let a = getAccount(address);
    v = new Validator(address);
    v.account = a.id;
    v.commitments = 0;
    v.challengesOpened = 0;
    v.challengesWon = 0;
    v.challengesLost = 0;
    v.challengesTimedOut = 0;
    v.bondsPosted = zero();
    v.bondsLost = zero();
    v.earnings = zero();
    v.totalChallengerPayouts = zero();
    a.validator = v.id;
    a.save();
  }
  return v;
}

export function jobKey(jobId: BigInt): string {
  return jobId.toString();
}

// ─── AccessControl, shared by the market and the stake manager ───

function getRole(contract: Address, role: Bytes): Role {
  let id = contract.concat(role);
  let r = Role.load(id);
  if (r === null) {
    r = new Role(id);
    r.contract = contract;
    r.role = role;
    r.adminRole = ZERO_ROLE;
    r.save();
  }
  return r;
}

function getMember(contract: Address, role: Bytes, account: Address): RoleMember {
  let r = getRole(contract, role);
  let id = r.id.concat(account);
  let m = RoleMember.load(id);
  if (m === null) {
    m = new RoleMember(id);
    m.role = r.id;
    m.account = account;
    m.active = false;
  }
  return m;
}

export function roleGranted(event: ethereum.Event, role: Bytes, account: Address, sender: Address): void {
  let m = getMember(event.address, role, account);
  m.active = true;
  m.grantedBy = sender;
  m.grantedAt = event.block.timestamp;
  m.save();
}

export function roleRevoked(event: ethereum.Event, role: Bytes, account: Address, sender: Address): void {
  let m = getMember(event.address, role, account);
  m.active = false;
  m.revokedBy = sender;
  m.revokedAt = event.block.timestamp;
  m.save();
}

export function roleAdminChanged(event: ethereum.Event, role: Bytes, newAdminRole: Bytes): void {
  let r = getRole(event.address, role);
  r.adminRole = newAdminRole;
  r.save();
}
