// SPDX-License-Identifier: Apache-2.0
// Handlers of the DataAvailability events (contracts/src/interfaces/IDataAvailability.sol): the
// publication that meets a data demand of the market, recorded on the job's open DataDemand
// (created by the market's DataDemanded, src/availability.ts). The DataPublished that the market
// emits when the publication is complete (the contract's call to `demandMet`, after the last
// StateRowsPublished or the BlobPublished of the same call) closes the demand there.
//
// The contract accepts a publication only for a demand open with it as the market's publisher
// and before the demand's deadline, so an event here always belongs to the job's open demand.

import { BigInt } from "@graphprotocol/graph-ts";
import { BlobPublished, StateOpened, StateRowsPublished } from "../generated/DataAvailability/DataAvailability";
import { DataDemand, Job } from "../generated/schema";
import { jobKey } from "./helpers";

/** The open demand of a job, or null when the job or its demand is unknown to the subgraph. */
function openDemandOf(jobId: BigInt): DataDemand | null {
  let job = Job.load(jobKey(jobId));
  if (job === null) return null;
  let open = job.openDemand;
  if (open === null) return null;
  return DataDemand.load(open);
}

export function handleStateOpened(event: StateOpened): void {
  let p = event.params;
  let dd = openDemandOf(p.jobId);
  if (dd === null) return;
  let entries = p.entries;
  dd.publication = "State";
  dd.stateHash = p.stateHash;
  dd.nextStateHash = p.nextStateHash;
  dd.entries = entries;
  dd.tensors = entries.length / 3;
  dd.stateOpenedAt = event.block.timestamp;
  dd.stateOpenedTx = event.transaction.hash;
  dd.save();
}

// The rows themselves stay in the transaction's log: a state is megabytes, and the demand
// records how far its publication got.
export function handleStateRowsPublished(event: StateRowsPublished): void {
  let p = event.params;
  let dd = openDemandOf(p.jobId);
  if (dd === null) return;
  dd.rowRuns += 1;
  dd.rowBytes = dd.rowBytes.plus(BigInt.fromI32(p.rows.length));
  dd.lastTensor = p.tensor;
  dd.lastFirstRow = p.firstRow;
  dd.save();
}

export function handleBlobPublished(event: BlobPublished): void {
  let p = event.params;
  let dd = openDemandOf(p.jobId);
  if (dd === null) return;
  dd.publication = "Blob";
  dd.blobSize = BigInt.fromI32(p.blob.length);
  dd.save();
}
