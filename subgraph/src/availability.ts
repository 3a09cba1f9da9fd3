// SPDX-License-Identifier: Apache-2.0
// Data availability on the JobMarket (IJobMarket.demandData and what follows): a demand, the
// report that it was met, or the claim that it went unmet. src/job-market.ts exports the
// handlers, which call these; the manifest names that file as the data source's mapping. The
// publication itself (openState then publishRows, or publishBlob) happens on the market's
// publisher, the DataAvailability contract, whose events src/data-availability.ts indexes into
// the same DataDemand.
//
// Order of the events in one transaction: the publisher's StateRowsPublished (one per run) or
// BlobPublished precede the DataPublished that its call to `demandMet` makes the market emit;
// DataUnavailable precedes the stake manager's CollateralSeized, which is how the Slash learns its
// job and reason.

import { Address, BigInt } from "@graphprotocol/graph-ts";
import { DataDemanded, DataPublished, DataUnavailable } from "../generated/JobMarket/JobMarket";
import { DataDemand, Job } from "../generated/schema";
import { credit, getAccount, getDay, getMarket, getProvider, jobKey, setStatus } from "./helpers";

export function dataDemanded(event: DataDemanded): void {
  let p = event.params;
  let job = Job.load(jobKey(p.jobId));
  if (job === null) return;
  // Only a submitted job can be demanded, so it has its worker.
  let worker = job.worker;
  if (worker === null) return;
  let m = getMarket();
  let demander = getAccount(p.demander);

  job.demandCount += 1;
  let dd = new DataDemand(job.id + "-" + job.demandCount.toString());
  dd.job = job.id;
  dd.index = job.demandCount;
  dd.demander = demander.id;
  dd.worker = worker;
  dd.step = p.step;
  dd.bond = p.bond;
  dd.deadline = p.deadline;
  // demandData stores the market's publisher with the demand; only that contract can meet it.
  dd.publisher = m.publisher;
  dd.outcome = "Open";
  dd.rowRuns = 0;
  dd.rowBytes = BigInt.zero();
  dd.openedAt = event.block.timestamp;
  dd.openedBlock = event.block.number;
  dd.openedTx = event.transaction.hash;
  dd.save();

  setStatus(job, m, "Demanded", event);
  job.openDemand = dd.id;
  job.demandedAt = event.block.timestamp;
  job.save();
  m.demandCount += 1;
  m.totalDemandBonds = m.totalDemandBonds.plus(p.bond);
  m.save();
  let d = getDay(event);
  d.dataDemands += 1;
  d.demandBonds = d.demandBonds.plus(p.bond);
  d.save();
}

// Met: as when a challenger loses, the bond is credited to the worker and the job goes back to
// Submitted with its window moved on.
export function dataPublished(event: DataPublished): void {
  let p = event.params;
  let job = Job.load(jobKey(p.jobId));
  if (job === null) return;
  let open = job.openDemand;
  if (open === null) return;
  let dd = DataDemand.load(open);
  if (dd === null) return;
  let m = getMarket();
  let provider = getProvider(Address.fromBytes(dd.worker), event);

  dd.outcome = "Met";
  dd.windowEnd = p.windowEnd;
  dd.metBy = event.transaction.from;
  dd.closedAt = event.block.timestamp;
  dd.closedTx = event.transaction.hash;
  dd.save();
  setStatus(job, m, "Submitted", event);
  job.windowEnd = p.windowEnd;
  job.openDemand = null;
  job.demandsMet += 1;
  job.save();
  provider.demandsMet += 1;
  provider.bondsWon = provider.bondsWon.plus(dd.bond);
  provider.earnings = provider.earnings.plus(dd.bond);
  provider.save();
  credit(Address.fromBytes(dd.worker), dd.bond);
  m.demandsMet += 1;
  m.save();
  let d = getDay(event);
  d.dataDemandsMet += 1;
  d.save();
}

// Unmet: settled as a dispute the worker lost, with the demander in the challenger's place.
export function dataUnavailable(event: DataUnavailable): void {
  let p = event.params;
  let job = Job.load(jobKey(p.jobId));
  if (job === null) return;
  let open = job.openDemand;
  if (open === null) return;
  let dd = DataDemand.load(open);
  if (dd === null) return;
  let m = getMarket();
  let provider = getProvider(Address.fromBytes(dd.worker), event);

  dd.outcome = "Unmet";
  dd.demanderPayout = p.demanderPayout;
  dd.requesterPayout = p.requesterPayout;
  dd.closedAt = event.block.timestamp;
  dd.closedTx = event.transaction.hash;
  dd.save();
  setStatus(job, m, "Resolved", event);
  job.resolvedAt = event.block.timestamp;
  job.openDemand = null;
  job.demandsUnmet += 1;
  job.save();
  provider.demandsUnmet += 1;
  let collateral = job.collateral;
  if (collateral !== null) {
    provider.collateralLocked = provider.collateralLocked.minus(collateral);
    if (!collateral.isZero()) {
      // The stake manager's CollateralSeized follows in this transaction; it links the slash.
      provider.pendingSeizureTx = event.transaction.hash;
      provider.pendingSeizureJob = job.id;
      provider.pendingSeizureReason = "DataUnavailable";
    }
  }
  provider.save();
  credit(p.demander, p.demanderPayout);
  credit(Address.fromBytes(job.requester), p.requesterPayout);
  m.demandsUnmet += 1;
  m.totalDemanderPayouts = m.totalDemanderPayouts.plus(p.demanderPayout);
  m.totalRefunds = m.totalRefunds.plus(job.payment);
  m.save();
  let d = getDay(event);
  d.dataDemandsUnmet += 1;
  d.demanderPayouts = d.demanderPayouts.plus(p.demanderPayout);
  d.refunds = d.refunds.plus(job.payment);
  d.save();
}
