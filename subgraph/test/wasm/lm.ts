// SPDX-License-Identifier: Apache-2.0
// The fine-tuning game's step of the scenario (src/lm-dispute-game.ts): a third entry file of the
// module test/mappings.test.mjs compiles with test/wasm/harness.ts, sharing its store. It runs
// last, on job 9: the market opens a challenge whose game is LmDisputeGame, and the game's moves
// (its chunked commit, the chunk picked and revealed, then the moves every game shares) are
// indexed as the job's challenge and its DisputeMoves.

import { BigInt, Bytes, ethereum } from "@graphprotocol/graph-ts";
import { ChallengeCommitted, ChallengeOpened } from "../../generated/JobMarket/JobMarket";
import {
  ChunkPicked, ChunkRevealed, DefenderSet, GameDecided, GameStarted, OpDisputed, OpTraceCommitted, RowChunkPicked,
  RowChunkRevealed, RowHashesRevealed, RowPicked, RowRevealed, SpecAdmitted,
} from "../../generated/LmDisputeGame/LmDisputeGame";
import { AdmittedSpec, Challenge, DisputeMove, Provider } from "../../generated/schema";
import * as jm from "../../src/job-market";
import * as lm from "../../src/lm-dispute-game";
import {
  a, addr, check, claim, eqB, eqI, eqS, event, flag, gwei, MARKET, now, p, post, submit, tx, txCount, u, VALIDATOR, w,
  wei, word, WORKER,
} from "./support";

const LM_GAME = addr(0xa6);

function words(from: i32, n: i32): ethereum.Value {
  let out = new Array<Bytes>();
  for (let i = 0; i < n; i++) out.push(word(from + i));
  return ethereum.Value.fromFixedBytesArray(out);
}

function challengeOf(id: string): Challenge {
  let c = Challenge.load(id);
  check(c !== null, "challenge " + id + " exists");
  return changetype<Challenge>(c);
}

function lastMove(): DisputeMove {
  let m = DisputeMove.load(word(0x100000 + txCount).concatI32(1));
  check(m !== null, "the transaction's move is stored");
  return changetype<DisputeMove>(m);
}

export function lmDisputeWorkerLost(): void {
  tx(12);
  lm.handleSpecAdmitted(changetype<SpecAdmitted>(event(LM_GAME, [p("specHash", w(0xf7)), p("steps", u(40))])));
  check(AdmittedSpec.load(word(0xf7)) !== null, "the fine-tuning spec is admitted");
  tx(12);
  lm.handleDefenderSet(changetype<DefenderSet>(event(LM_GAME, [p("worker", a(WORKER)), p("defender", a(addr(0x78)))])));
  check(changetype<Bytes>(changetype<Provider>(Provider.load(WORKER)).defender).equals(addr(0x78)), "the watchtower");
  let pay = gwei(10000000);
  tx(12);
  post(9, pay);
  tx(12);
  claim(9, gwei(5000000));
  tx(12);
  submit(9);
  tx(12);
  jm.handleChallengeCommitted(changetype<ChallengeCommitted>(event(MARKET, [
    p("jobId", u(9)), p("committer", a(VALIDATOR)), p("commitment", w(0xc9)),
  ])));
  tx(12);
  let bond = gwei(10000000);
  jm.handleChallengeOpened(changetype<ChallengeOpened>(event(MARKET, [
    p("jobId", u(9)), p("challenger", a(VALIDATOR)), p("step", u(1)), p("claimedStateHash", w(0xbad9)),
    p("bond", wei(bond)), p("resolver", a(LM_GAME)), p("deadline", u(now + 86400)),
  ])));
  lm.handleGameStarted(changetype<GameStarted>(event(LM_GAME, [
    p("jobId", u(9)), p("step", u(1)), p("worker", a(WORKER)), p("challenger", a(VALIDATOR)), p("clock", u(34560)),
  ])));
  let c = challengeOf("9-1");
  eqS(changetype<string>(c.phase), "Commit", "the worker commits first");
  check(changetype<Bytes>(c.game).equals(LM_GAME), "the challenge's game is the fine-tuning game");

  tx(12);
  let lens = new Array<BigInt>();
  lens.push(BigInt.fromI32(31));
  lens.push(BigInt.fromI32(67));
  lm.handleOpTraceCommitted(changetype<OpTraceCommitted>(event(LM_GAME, [
    p("jobId", u(9)), p("opRoot", w(0x0990)), p("nodes", words(0x100, 3)),
    p("lens", ethereum.Value.fromUnsignedBigIntArray(lens)),
  ])));
  c = challengeOf("9-1");
  eqS(changetype<string>(c.phase), "PickChunk", "the challenger picks a chunk");
  eqI(changetype<Bytes[]>(c.opNodes).length, 3, "one node per chunk");
  eqB(changetype<BigInt[]>(c.lens)[1], BigInt.fromI32(67), "the batch's lengths");
  eqS(lastMove().kind, "OpTraceCommitted", "the commit's move");
  tx(12);
  lm.handleChunkPicked(changetype<ChunkPicked>(event(LM_GAME, [p("jobId", u(9)), p("chunk", u(1))])));
  c = challengeOf("9-1");
  eqS(changetype<string>(c.phase), "RevealChunk", "the worker reveals it");
  eqB(changetype<BigInt>(c.pickedChunk), BigInt.fromI32(1), "the picked chunk");
  tx(12);
  lm.handleChunkRevealed(changetype<ChunkRevealed>(event(LM_GAME, [
    p("jobId", u(9)), p("chunk", u(1)), p("leaves", words(0x200, 128)),
  ])));
  c = challengeOf("9-1");
  eqS(changetype<string>(c.phase), "NameOp", "the challenger names an op");
  eqI(changetype<Bytes[]>(c.chunkLeaves).length, 128, "the chunk's leaves");
  let m = lastMove();
  eqS(m.kind, "ChunkRevealed", "the reveal's move");
  eqB(changetype<BigInt>(m.chunk), BigInt.fromI32(1), "the revealed chunk");

  tx(12);
  // A long vocabulary's head transpose (49 · 25 = 1 225 chunk rows): its row hashes by chunks.
  lm.handleOpDisputed(changetype<OpDisputed>(event(LM_GAME, [
    p("jobId", u(9)), p("leaf", u(1)), p("kind", ethereum.Value.fromI32(36)), p("rows", u(1225)), p("cols", u(2048)),
  ])));
  tx(12);
  lm.handleRowHashesRevealed(changetype<RowHashesRevealed>(event(LM_GAME, [p("jobId", u(9)), p("rows", u(2))])));
  eqS(changetype<string>(challengeOf("9-1").phase), "PickRowChunk", "the challenger picks a chunk of rows");
  tx(12);
  lm.handleRowChunkPicked(changetype<RowChunkPicked>(event(LM_GAME, [p("jobId", u(9)), p("chunk", u(1))])));
  eqB(changetype<BigInt>(challengeOf("9-1").pickedRowChunk), BigInt.fromI32(1), "the second chunk of rows");
  tx(12);
  lm.handleRowChunkRevealed(changetype<RowChunkRevealed>(event(LM_GAME, [p("jobId", u(9)), p("chunk", u(1))])));
  eqS(changetype<string>(challengeOf("9-1").phase), "PickRow", "then a row of it");
  eqS(lastMove().kind, "RowChunkRevealed", "the chunk's move");
  tx(12);
  lm.handleRowPicked(changetype<RowPicked>(event(LM_GAME, [p("jobId", u(9)), p("row", u(1224))])));
  tx(12);
  lm.handleRowRevealed(changetype<RowRevealed>(event(LM_GAME, [p("jobId", u(9)), p("row", u(1224)), p("rowHash", w(0x4949))])));
  tx(12);
  lm.handleGameDecided(changetype<GameDecided>(event(LM_GAME, [
    p("jobId", u(9)), p("workerLost", flag(true)), p("byTimeout", flag(false)),
    p("recomputed", ethereum.Value.fromSignedBigInt(BigInt.fromI32(12))), p("claimed", ethereum.Value.fromSignedBigInt(BigInt.fromI32(17))),
  ])));
  c = challengeOf("9-1");
  eqS(changetype<string>(c.phase), "Decided", "decided");
  check(changetype<bool>(c.gameWorkerLost), "the worker lost");
  eqB(changetype<BigInt>(c.disputedLeaf), BigInt.fromI32(1), "the disputed leaf");
  eqB(changetype<BigInt>(c.recomputed), BigInt.fromI32(12), "the recomputed element");
  // GameStarted, the commit, the chunk picked and revealed, the op, the row chunks' nodes, the
  // chunk of rows picked and revealed, row, row, verdict.
  eqI(c.moveCount, 11, "moves of the fine-tuning game");
}
