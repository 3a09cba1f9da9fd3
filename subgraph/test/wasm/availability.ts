// SPDX-License-Identifier: Apache-2.0
// The data-availability steps of the scenario (src/availability.ts for the market's events,
// src/data-availability.ts for the publisher's): a second entry file of the module
// test/mappings.test.mjs compiles with test/wasm/harness.ts, sharing its store. They run after
// `payoutsAndAdmin` and before `dailyStats`, on jobs 7 and 8. The market's DataDemanded,
// DataPublished and DataUnavailable come from MARKET; StateOpened, StateRowsPublished and
// BlobPublished from DATA_AVAILABILITY, the market's publisher since `deployAndStake`.

import { Address, BigInt, Bytes, ethereum } from "@graphprotocol/graph-ts";
import { BlobPublished, StateOpened, StateRowsPublished } from "../../generated/DataAvailability/DataAvailability";
import {
  DataDemanded, DataPublished, DataUnavailable, JobFinalized, PublisherUpdated,
} from "../../generated/JobMarket/JobMarket";
import { CollateralReleased, CollateralSeized } from "../../generated/StakeManager/StakeManager";
import { ConfigChange, DataDemand, Provider, Slash, Validator } from "../../generated/schema";
import * as da from "../../src/data-availability";
import * as jm from "../../src/job-market";
import * as sm from "../../src/stake-manager";
import {
  a, account, addr, ADMIN, check, claim, DATA_AVAILABILITY, eqB, eqI, eqS, event, gwei, job, market, MARKET, now, p, post, REQUESTER, STAKE,
  submit, tx, txCount, u, w, wei, word, WORKER,
} from "./support";

// Demands data without any stake: its Account is all the subgraph keeps of it.
const DEMANDER = addr(0x07);
const BOND = gwei(10000000); // the challenge bond of the market parameters
const AVAILABILITY = 34560; // 40 % of the 86400 s dispute duration

// A second DataAvailability the admin switches to in `demandUnmet`.
const NEXT_PUBLISHER = addr(0xa5);

function filled(len: i32, fill: u8): Bytes {
  let b = new Uint8Array(len);
  b.fill(fill);
  return changetype<Bytes>(b);
}

function demand(id: string): DataDemand {
  let d = DataDemand.load(id);
  check(d !== null, "data demand " + id + " exists");
  return changetype<DataDemand>(d);
}

function provider(): Provider {
  return changetype<Provider>(Provider.load(WORKER));
}

function demandData(jobId: i64, step: i64): void {
  jm.handleDataDemanded(changetype<DataDemanded>(event(MARKET, [
    p("jobId", u(jobId)), p("demander", a(DEMANDER)), p("step", u(step)), p("bond", wei(BOND)),
    p("deadline", u(now + AVAILABILITY)),
  ])));
}

function rows(jobId: i64, tensor: i64, firstRow: i64, len: i32): void {
  da.handleStateRowsPublished(changetype<StateRowsPublished>(event(DATA_AVAILABILITY, [
    p("jobId", u(jobId)), p("tensor", u(tensor)), p("firstRow", u(firstRow)),
    p("rows", ethereum.Value.fromBytes(filled(len, 0x2a))),
  ])));
}

function openState(jobId: i64, step: i64, tensors: i32): void {
  let entries = new Array<Bytes>();
  for (let i = 0; i < 3 * tensors; i++) entries.push(word(0xe000 + i));
  da.handleStateOpened(changetype<StateOpened>(event(DATA_AVAILABILITY, [
    p("jobId", u(jobId)), p("step", u(step)), p("stateHash", w(0x5700 + i32(step))),
    p("nextStateHash", w(0x5701 + i32(step))), p("entries", ethereum.Value.fromFixedBytesArray(entries)),
  ])));
}

function setPublisher(from: Address, to: Address): void {
  jm.handlePublisherUpdated(changetype<PublisherUpdated>(event(MARKET, [p("oldPublisher", a(from)), p("newPublisher", a(to))])));
}

/** The market's DataPublished, which the publisher's call to `demandMet` makes it emit. */
function published(jobId: i64, step: i64, windowEnd: i64): void {
  jm.handleDataPublished(changetype<DataPublished>(event(MARKET, [
    p("jobId", u(jobId)), p("step", u(step)), p("windowEnd", u(windowEnd)),
  ])));
}

/**
 * Job 7, a batch-inference job: a demand of step 0 (the model, a state) is met by its entries and
 * three runs of rows over two transactions; a second demand, of leaf 3 (a chunk's outputs), is
 * met by a blob. Each time the job goes Submitted → Demanded → Submitted, the worker gets the
 * bond and the window moves on; then the job finalizes.
 */
export function demandMet(): void {
  let pay = gwei(600000000);
  let collateral = gwei(300000000);
  let before = market();
  let prov0 = provider();
  let workerCredit = account(WORKER).totalCredited;
  tx(12);
  post(7, pay);
  tx(12);
  claim(7, collateral);
  tx(12);
  submit(7);
  let window0 = now + 600;

  tx(12);
  demandData(7, 0);
  let opened = now;
  let j = job("7");
  eqS(j.status, "Demanded", "job 7 demanded");
  eqS(changetype<string>(j.openDemand), "7-1", "job 7 open demand");
  eqB(changetype<BigInt>(j.demandedAt), BigInt.fromI64(now), "job 7 demanded at");
  eqI(j.demandCount, 1, "job 7 demands");
  let d = demand("7-1");
  eqS(d.outcome, "Open", "demand 7-1 open");
  eqI(d.index, 1, "demand 7-1 index");
  eqS(d.job, "7", "demand 7-1 job");
  eqS(d.demander.toHexString(), DEMANDER.toHexString(), "demand 7-1 demander");
  eqS(d.worker.toHexString(), WORKER.toHexString(), "demand 7-1 worker");
  eqB(d.step, BigInt.zero(), "demand 7-1 step");
  eqB(d.bond, BOND, "demand 7-1 bond");
  eqB(d.deadline, BigInt.fromI64(now + AVAILABILITY), "demand 7-1 deadline");
  eqS(changetype<Bytes>(d.publisher).toHexString(), DATA_AVAILABILITY.toHexString(), "demand 7-1 publisher");
  eqB(d.openedAt, BigInt.fromI64(now), "demand 7-1 opened at");
  eqS(d.openedTx.toHexString(), word(0x100000 + txCount).toHexString(), "demand 7-1 transaction");
  check(d.publication === null && d.stateHash === null && d.closedAt === null, "nothing published yet");
  eqB(account(DEMANDER).totalCredited, BigInt.zero(), "the demander's bond is not credit");
  check(Validator.load(DEMANDER) === null && Provider.load(DEMANDER) === null, "a demander is neither validator nor provider");
  let m = market();
  eqI(m.demandedJobs, 1, "demanded count");
  eqI(m.submittedJobs, before.submittedJobs, "submitted count while demanded");
  eqI(m.demandCount, 1, "market demands");
  eqB(m.totalDemandBonds, BOND, "demand bonds");
  eqB(m.totalBonds, before.totalBonds, "a demand bond is not a challenge bond");

  tx(12);
  openState(7, 0, 2);
  d = demand("7-1");
  eqS(changetype<string>(d.publication), "State", "demand 7-1 publishes a state");
  eqS(changetype<Bytes>(d.stateHash).toHexString(), word(0x5700).toHexString(), "opened state hash");
  eqS(changetype<Bytes>(d.nextStateHash).toHexString(), word(0x5701).toHexString(), "next state hash");
  let entries = changetype<Array<Bytes>>(d.entries);
  eqI(entries.length, 6, "entries, 3 a tensor");
  eqS(entries[5].toHexString(), word(0xe005).toHexString(), "entries in order");
  eqI(changetype<i32>(d.tensors), 2, "tensors");
  eqB(changetype<BigInt>(d.stateOpenedAt), BigInt.fromI64(now), "state opened at");
  eqS(job("7").status, "Demanded", "job 7 still demanded once opened");

  tx(12);
  // One publishRows call, two runs of tensor 0.
  rows(7, 0, 0, 64);
  rows(7, 0, 2, 64);
  d = demand("7-1");
  eqI(d.rowRuns, 2, "row runs");
  eqB(d.rowBytes, BigInt.fromI32(128), "row bytes");
  eqS(d.outcome, "Open", "open until the last row");

  tx(12);
  // The call with the last row meets the demand: its run, then DataPublished.
  rows(7, 1, 0, 16);
  let window1 = window0 + (now - opened);
  published(7, 0, window1);
  d = demand("7-1");
  eqS(d.outcome, "Met", "demand 7-1 met");
  eqI(d.rowRuns, 3, "row runs at the end");
  eqB(d.rowBytes, BigInt.fromI32(144), "row bytes at the end");
  eqB(changetype<BigInt>(d.lastTensor), BigInt.fromI32(1), "last tensor");
  eqB(changetype<BigInt>(d.lastFirstRow), BigInt.zero(), "last run's first row");
  eqB(changetype<BigInt>(d.windowEnd), BigInt.fromI64(window1), "demand 7-1 window end");
  eqB(changetype<BigInt>(d.closedAt), BigInt.fromI64(now), "demand 7-1 met at");
  eqS(changetype<Bytes>(d.closedTx).toHexString(), word(0x100000 + txCount).toHexString(), "demand 7-1 met in");
  eqS(changetype<Bytes>(d.metBy).toHexString(), ADMIN.toHexString(), "the publisher (the harness's sender)");
  check(d.demanderPayout === null && d.requesterPayout === null, "no payouts when met");
  j = job("7");
  eqS(j.status, "Submitted", "job 7 back to submitted");
  check(j.openDemand === null, "no open demand after publication");
  eqB(changetype<BigInt>(j.windowEnd), BigInt.fromI64(window1), "job 7 window moved on");
  eqI(j.demandsMet, 1, "job 7 demands met");
  let prov = provider();
  eqI(prov.demandsMet, prov0.demandsMet + 1, "provider demands met");
  eqB(prov.bondsWon, prov0.bondsWon.plus(BOND), "provider wins the bond");
  eqB(prov.earnings, prov0.earnings.plus(BOND), "provider earnings with the bond");
  eqB(account(WORKER).totalCredited, workerCredit.plus(BOND), "worker credited the bond");
  m = market();
  eqI(m.demandedJobs, 0, "demanded count after publication");
  eqI(m.submittedJobs, before.submittedJobs + 1, "submitted count after publication");
  eqI(m.demandsMet, 1, "market demands met");

  tx(12);
  demandData(7, 3);
  opened = now;
  eqS(job("7").status, "Demanded", "job 7 demanded again");
  eqS(changetype<string>(job("7").openDemand), "7-2", "second demand of job 7");
  tx(12);
  // publishBlob: the blob, then DataPublished, in one call.
  da.handleBlobPublished(changetype<BlobPublished>(event(DATA_AVAILABILITY, [
    p("jobId", u(7)), p("step", u(3)), p("blob", ethereum.Value.fromBytes(filled(40, 0x0b))),
  ])));
  let window2 = window1 + (now - opened);
  published(7, 3, window2);
  d = demand("7-2");
  eqI(d.index, 2, "demand 7-2 index");
  eqS(changetype<string>(d.publication), "Blob", "demand 7-2 met by a blob");
  eqB(changetype<BigInt>(d.blobSize), BigInt.fromI32(40), "blob size");
  check(d.stateHash === null && d.entries === null, "a blob opens no state");
  eqI(d.rowRuns, 0, "a blob has no rows");
  eqS(d.outcome, "Met", "demand 7-2 met");
  j = job("7");
  eqS(j.status, "Submitted", "job 7 submitted after the blob");
  eqB(changetype<BigInt>(j.windowEnd), BigInt.fromI64(window2), "job 7 window after the blob");
  eqI(j.demandCount, 2, "job 7 demands");
  eqI(j.demandsMet, 2, "job 7 demands met");
  eqB(account(WORKER).totalCredited, workerCredit.plus(BOND).plus(BOND), "worker credited both bonds");

  tx(window2 - now);
  let fee = gwei(15000000); // 250 bps
  jm.handleJobFinalized(changetype<JobFinalized>(event(MARKET, [p("jobId", u(7)), p("worker", a(WORKER)), p("workerPayout", wei(pay.minus(fee))), p("fee", wei(fee))])));
  sm.handleCollateralReleased(changetype<CollateralReleased>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(collateral))])));
  eqS(job("7").status, "Finalized", "job 7 finalized after its demands");
  prov = provider();
  eqB(prov.collateralLocked, prov0.collateralLocked, "collateral released");
  eqB(prov.earnings, prov0.earnings.plus(BOND).plus(BOND).plus(pay.minus(fee)), "provider earnings");
  m = market();
  eqI(m.demandCount, 2, "market demands after job 7");
  eqI(m.demandsMet, 2, "market demands met after job 7");
  eqI(m.finalizedJobs, before.finalizedJobs + 1, "finalized count after job 7");
}

/**
 * Job 8: a demand whose state is opened and partly published, but not wholly by the deadline.
 * Meanwhile the admin names another publisher: the demand keeps the one it was made with, which
 * still publishes for it. `claimUnavailable` settles it as a lost dispute: DataUnavailable
 * (Demanded → Resolved, the demander credited its bond and the reward, the requester the payment
 * and the rest of the collateral), then the stake manager seizes the whole collateral. Last, the
 * admin disables demands (publisher zero).
 */
export function demandUnmet(): void {
  let pay = gwei(200000000);
  let collateral = gwei(100000000);
  let reward = gwei(50000000); // 5000 bps of the collateral
  let before = market();
  let prov0 = provider();
  let requesterCredit = account(REQUESTER).totalCredited;
  let demanderCredit = account(DEMANDER).totalCredited;
  let staked = account(WORKER).staked;
  tx(12);
  post(8, pay);
  tx(12);
  claim(8, collateral);
  tx(12);
  submit(8);
  tx(12);
  demandData(8, 5);
  eqS(job("8").status, "Demanded", "job 8 demanded");
  eqI(market().demandedJobs, 1, "demanded count for job 8");
  tx(12);
  setPublisher(DATA_AVAILABILITY, NEXT_PUBLISHER);
  eqS(changetype<Bytes>(market().publisher).toHexString(), NEXT_PUBLISHER.toHexString(), "the market's new publisher");
  eqS(changetype<Bytes>(demand("8-1").publisher).toHexString(), DATA_AVAILABILITY.toHexString(), "demand 8-1 keeps its publisher");
  tx(12);
  openState(8, 5, 3);
  tx(12);
  rows(8, 0, 0, 32);

  tx(AVAILABILITY);
  let toDemander = BOND.plus(reward);
  let toRequester = pay.plus(collateral.minus(reward));
  jm.handleDataUnavailable(changetype<DataUnavailable>(event(MARKET, [
    p("jobId", u(8)), p("demander", a(DEMANDER)), p("demanderPayout", wei(toDemander)),
    p("requesterPayout", wei(toRequester)),
  ])));
  sm.handleCollateralSeized(changetype<CollateralSeized>(event(STAKE, [p("account", a(WORKER)), p("amount", wei(collateral))])));

  let d = demand("8-1");
  eqS(d.outcome, "Unmet", "demand 8-1 unmet");
  eqB(changetype<BigInt>(d.demanderPayout), toDemander, "demander payout");
  eqB(changetype<BigInt>(d.requesterPayout), toRequester, "requester payout");
  eqB(changetype<BigInt>(d.closedAt), BigInt.fromI64(now), "demand 8-1 claimed unmet at");
  eqI(d.rowRuns, 1, "what got published before the deadline");
  eqI(changetype<i32>(d.tensors), 3, "tensors of the opened state");
  check(d.windowEnd === null && d.metBy === null, "an unmet demand moves no window");
  let j = job("8");
  eqS(j.status, "Resolved", "job 8 resolved");
  eqB(changetype<BigInt>(j.resolvedAt), BigInt.fromI64(now), "job 8 resolved at");
  check(j.openDemand === null, "no open demand after the claim");
  eqI(j.demandsUnmet, 1, "job 8 demands unmet");
  eqI(j.demandsMet, 0, "job 8 demands met");

  let slash = Slash.load(word(0x100000 + txCount).concatI32(2));
  check(slash !== null, "seizure stored");
  let s = changetype<Slash>(slash);
  eqS(s.kind, "CollateralSeized", "seizure kind");
  eqS(s.reason, "DataUnavailable", "seizure reason");
  eqS(changetype<string>(s.job), "8", "seizure job");
  eqB(s.amount, collateral, "the whole collateral");

  let prov = provider();
  eqI(prov.demandsUnmet, prov0.demandsUnmet + 1, "provider demands unmet");
  eqI(prov.disputesLost, prov0.disputesLost, "an unmet demand is not a lost dispute");
  eqB(prov.collateralLocked, prov0.collateralLocked, "provider collateral after the seizure");
  eqB(prov.collateralSeized, prov0.collateralSeized.plus(collateral), "provider collateral seized");
  eqB(prov.bondsWon, prov0.bondsWon, "no bond for the worker");
  let wacc = account(WORKER);
  eqB(wacc.staked, staked.minus(collateral), "worker stake after the seizure");
  eqB(wacc.locked, BigInt.zero(), "worker locked after the seizure");
  check(changetype<Provider>(Provider.load(WORKER)).pendingSeizureTx === null, "pending seizure consumed");
  eqB(account(DEMANDER).totalCredited, demanderCredit.plus(toDemander), "demander credited bond and reward");
  eqB(account(REQUESTER).totalCredited, requesterCredit.plus(toRequester), "requester credited payment and the rest");

  let m = market();
  eqI(m.demandedJobs, 0, "demanded count after the claim");
  eqI(m.resolvedJobs, before.resolvedJobs + 1, "resolved count");
  eqI(m.demandCount, 3, "market demands");
  eqI(m.demandsMet, 2, "market demands met");
  eqI(m.demandsUnmet, 1, "market demands unmet");
  eqB(m.totalDemandBonds, BOND.times(BigInt.fromI32(3)), "demand bonds");
  eqB(m.totalDemanderPayouts, toDemander, "demander payouts");
  eqB(m.totalRefunds, before.totalRefunds.plus(pay), "the payment counts as a refund");
  eqB(m.totalCollateralSeized, before.totalCollateralSeized.plus(collateral), "collateral seized");
  eqB(m.totalLocked, before.totalLocked, "nothing left locked");

  tx(12);
  setPublisher(NEXT_PUBLISHER, addr(0));
  eqS(changetype<Bytes>(market().publisher).toHexString(), addr(0).toHexString(), "demands disabled");
  let change = changetype<ConfigChange>(ConfigChange.load(word(0x100000 + txCount).concatI32(1)));
  eqS(change.kind, "PublisherUpdated", "publisher change kind");
  eqS(changetype<Bytes>(change.previousAccount).toHexString(), NEXT_PUBLISHER.toHexString(), "previous publisher");
  eqS(changetype<Bytes>(change.account).toHexString(), addr(0).toHexString(), "no publisher");
  eqI(market().demandCount, 3, "a publisher change makes no demand");
}
