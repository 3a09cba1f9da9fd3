// SPDX-License-Identifier: Apache-2.0
// Handlers of the DisputeGame events (contracts/src/DisputeGame.sol), and of the events every game
// shares (GameBase.sol), which the LmDisputeGame data source reuses (src/lm-dispute-game.ts): each
// becomes a DisputeMove of the job's open challenge, and the challenge keeps the game's latest state. The market emits
// ChallengeOpened before the game's GameStarted, and the game emits GameDecided before the
// market's DisputeResolved, so the challenge is open for every move.

import { Address, BigInt, ethereum, log } from "@graphprotocol/graph-ts";
import {
  DefenderSet,
  GameDecided,
  GameStarted,
  OpDisputed,
  OpTraceCommitted,
  RowChunkPicked,
  RowChunkRevealed,
  RowHashesRevealed,
  RowPicked,
  RowRevealed,
  SpecAdmitted,
} from "../generated/DisputeGame/DisputeGame";
import { AdmittedSpec, Challenge, DisputeMove, Job } from "../generated/schema";
import { eventId, getDay, getProvider, jobKey } from "./helpers";

function challengeOf(jobId: BigInt): Challenge | null {
  let job = Job.load(jobKey(jobId));
  if (job === null) return null;
  let open = job.openChallenge;
  if (open !== null) return Challenge.load(open);
  // Not open any more (timed out on the market while the game went on): the latest one.
  if (job.challengeCount == 0) return null;
  return Challenge.load(job.id + "-" + job.challengeCount.toString());
}

/** Rows in a chunk of a disputed output's rows (GameBase.ROW_CHUNK_LOG = 10). */
const ROW_CHUNK = 1024;

/** Starts the move of `kind` for job `jobId`, or returns null when no challenge is known. */
export function move(event: ethereum.Event, jobId: BigInt, kind: string): DisputeMove | null {
  let c = challengeOf(jobId);
  if (c === null) {
    log.warning("dispute game event {} for job {} without a challenge", [kind, jobId.toString()]);
    return null;
  }
  c.moveCount += 1;
  c.save();
  let m = new DisputeMove(eventId(event));
  m.challenge = c.id;
  m.job = c.job;
  m.index = c.moveCount;
  m.kind = kind;
  m.sender = event.transaction.from;
  m.blockNumber = event.block.number;
  m.timestamp = event.block.timestamp;
  m.transactionHash = event.transaction.hash;
  let d = getDay(event);
  d.disputeMoves += 1;
  d.save();
  return m;
}

/** The challenge that `move` just found (and saved) for job `jobId`. */
export function current(jobId: BigInt): Challenge {
  return changetype<Challenge>(challengeOf(jobId));
}

export function handleGameStarted(event: GameStarted): void {
  let p = event.params;
  let m = move(event, p.jobId, "GameStarted");
  if (m === null) return;
  m.step = p.step;
  m.worker = p.worker;
  m.challenger = p.challenger;
  m.clock = p.clock;
  m.save();
  let c = current(p.jobId);
  c.phase = "Commit";
  c.game = event.address;
  c.clock = p.clock;
  c.save();
}

export function handleOpTraceCommitted(event: OpTraceCommitted): void {
  let p = event.params;
  let m = move(event, p.jobId, "OpTraceCommitted");
  if (m === null) return;
  let leaves = p.leaves;
  m.opRoot = p.opRoot;
  m.leaves = leaves;
  m.save();
  let c = current(p.jobId);
  c.phase = "NameOp";
  c.opRoot = p.opRoot;
  c.opLeaves = leaves;
  c.save();
}

export function handleOpDisputed(event: OpDisputed): void {
  let p = event.params;
  let m = move(event, p.jobId, "OpDisputed");
  if (m === null) return;
  m.leaf = p.leaf;
  m.opKind = p.kind;
  m.rows = p.rows;
  m.cols = p.cols;
  m.save();
  let c = current(p.jobId);
  c.phase = "RevealRowHashes";
  c.disputedLeaf = p.leaf;
  c.opKind = p.kind;
  c.outRows = p.rows;
  c.outCols = p.cols;
  c.save();
}

export function handleRowHashesRevealed(event: RowHashesRevealed): void {
  let p = event.params;
  let m = move(event, p.jobId, "RowHashesRevealed");
  if (m === null) return;
  m.rows = p.rows;
  m.save();
  let c = current(p.jobId);
  // An output of more than 2^ROW_CHUNK_LOG rows revealed its chunks' nodes (GameBase).
  let chunked = c.outRows !== null && (c.outRows as BigInt).gt(BigInt.fromI32(ROW_CHUNK));
  c.phase = chunked ? "PickRowChunk" : "PickRow";
  c.save();
}

export function handleRowChunkPicked(event: RowChunkPicked): void {
  let p = event.params;
  let m = move(event, p.jobId, "RowChunkPicked");
  if (m === null) return;
  m.chunk = p.chunk;
  m.save();
  let c = current(p.jobId);
  c.phase = "RevealRowChunk";
  c.pickedRowChunk = p.chunk;
  c.save();
}

export function handleRowChunkRevealed(event: RowChunkRevealed): void {
  let p = event.params;
  let m = move(event, p.jobId, "RowChunkRevealed");
  if (m === null) return;
  m.chunk = p.chunk;
  m.save();
  let c = current(p.jobId);
  c.phase = "PickRow";
  c.save();
}

export function handleRowPicked(event: RowPicked): void {
  let p = event.params;
  let m = move(event, p.jobId, "RowPicked");
  if (m === null) return;
  m.row = p.row;
  m.save();
  let c = current(p.jobId);
  c.phase = "RevealRow";
  c.pickedRow = p.row;
  c.save();
}

export function handleRowRevealed(event: RowRevealed): void {
  let p = event.params;
  let m = move(event, p.jobId, "RowRevealed");
  if (m === null) return;
  m.row = p.row;
  m.rowHash = p.rowHash;
  m.save();
  let c = current(p.jobId);
  c.phase = "NameElement";
  c.rowHash = p.rowHash;
  c.save();
}

export function handleGameDecided(event: GameDecided): void {
  let p = event.params;
  let m = move(event, p.jobId, "GameDecided");
  if (m === null) return;
  m.workerLost = p.workerLost;
  m.byTimeout = p.byTimeout;
  m.recomputed = p.recomputed;
  m.claimed = p.claimed;
  m.save();
  let c = current(p.jobId);
  c.phase = "Decided";
  c.gameWorkerLost = p.workerLost;
  c.gameByTimeout = p.byTimeout;
  c.recomputed = p.recomputed;
  c.claimed = p.claimed;
  c.save();
}

export function handleSpecAdmitted(event: SpecAdmitted): void {
  let spec = new AdmittedSpec(event.params.specHash);
  spec.steps = event.params.steps;
  spec.admittedAt = event.block.timestamp;
  spec.admittedTx = event.transaction.hash;
  spec.save();
}

export function handleDefenderSet(event: DefenderSet): void {
  let provider = getProvider(event.params.worker, event);
  provider.defender = event.params.defender.equals(Address.zero()) ? null : event.params.defender;
  provider.save();
}
