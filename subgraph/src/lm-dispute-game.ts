// SPDX-License-Identifier: Apache-2.0
// Handlers of the LmDisputeGame events (contracts/src/LmDisputeGame.sol, the fine-tuning game):
// the events it shares with DisputeGame (GameBase.sol: same signatures, so the same decoding) go
// to src/dispute-game.ts's handlers; its own commit (chunk nodes and the batch's lengths) and
// its two chunk moves are handled here. Each becomes a DisputeMove of the job's open challenge.

import {
  ChunkPicked,
  ChunkRevealed,
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
} from "../generated/LmDisputeGame/LmDisputeGame";
import * as base from "../generated/DisputeGame/DisputeGame";
import * as dg from "./dispute-game";

export function handleGameStarted(event: GameStarted): void {
  dg.handleGameStarted(changetype<base.GameStarted>(event));
}

export function handleOpTraceCommitted(event: OpTraceCommitted): void {
  let p = event.params;
  let m = dg.move(event, p.jobId, "OpTraceCommitted");
  if (m === null) return;
  m.opRoot = p.opRoot;
  m.nodes = p.nodes;
  m.lens = p.lens;
  m.save();
  let c = dg.current(p.jobId);
  c.phase = "PickChunk";
  c.opRoot = p.opRoot;
  c.opNodes = p.nodes;
  c.lens = p.lens;
  c.save();
}

export function handleChunkPicked(event: ChunkPicked): void {
  let p = event.params;
  let m = dg.move(event, p.jobId, "ChunkPicked");
  if (m === null) return;
  m.chunk = p.chunk;
  m.save();
  let c = dg.current(p.jobId);
  c.phase = "RevealChunk";
  c.pickedChunk = p.chunk;
  c.save();
}

export function handleChunkRevealed(event: ChunkRevealed): void {
  let p = event.params;
  let m = dg.move(event, p.jobId, "ChunkRevealed");
  if (m === null) return;
  m.chunk = p.chunk;
  m.leaves = p.leaves;
  m.save();
  let c = dg.current(p.jobId);
  c.phase = "NameOp";
  c.chunkLeaves = p.leaves;
  c.save();
}

export function handleOpDisputed(event: OpDisputed): void {
  dg.handleOpDisputed(changetype<base.OpDisputed>(event));
}

export function handleRowHashesRevealed(event: RowHashesRevealed): void {
  dg.handleRowHashesRevealed(changetype<base.RowHashesRevealed>(event));
}

export function handleRowChunkPicked(event: RowChunkPicked): void {
  dg.handleRowChunkPicked(changetype<base.RowChunkPicked>(event));
}

export function handleRowChunkRevealed(event: RowChunkRevealed): void {
  dg.handleRowChunkRevealed(changetype<base.RowChunkRevealed>(event));
}

export function handleRowPicked(event: RowPicked): void {
  dg.handleRowPicked(changetype<base.RowPicked>(event));
}

export function handleRowRevealed(event: RowRevealed): void {
  dg.handleRowRevealed(changetype<base.RowRevealed>(event));
}

export function handleGameDecided(event: GameDecided): void {
  dg.handleGameDecided(changetype<base.GameDecided>(event));
}

export function handleSpecAdmitted(event: SpecAdmitted): void {
  dg.handleSpecAdmitted(changetype<base.SpecAdmitted>(event));
}

export function handleDefenderSet(event: DefenderSet): void {
  dg.handleDefenderSet(changetype<base.DefenderSet>(event));
}
