// SPDX-License-Identifier: Apache-2.0
// The reward pools of convictions (JobMarket.RewardPoolOpened, RewardClaimed, RewardCollected;
// docs/economics.md): a conviction credits the winner its bond at once and pools the reward,
// which every claimant collects in equal shares after the claim period.

import { Address } from "@graphprotocol/graph-ts";
import { RewardClaimed, RewardCollected, RewardPoolOpened } from "../generated/JobMarket/JobMarket";
import { RewardPool, RewardShare, Validator } from "../generated/schema";
import { credit, getDay, getMarket, jobKey } from "./helpers";

function shareOf(pool: string, claimant: Address): RewardShare {
  let id = pool + "-" + claimant.toHexString();
  let s = RewardShare.load(id);
  if (s === null) {
    s = new RewardShare(id);
    s.pool = pool;
    s.claimant = claimant;
  }
  return s;
}

/** The convicting challenger or demander is the pool's first claimant; its RewardShare is made
 *  when it collects (it emits no RewardClaimed). */
export function rewardPoolOpened(event: RewardPoolOpened): void {
  let p = event.params;
  let pool = new RewardPool(jobKey(p.jobId));
  pool.job = jobKey(p.jobId);
  pool.reward = p.reward;
  pool.remaining = p.reward;
  pool.claimants = 1;
  pool.claimEnd = p.claimEnd;
  pool.openedAt = event.block.timestamp;
  pool.openedTx = event.transaction.hash;
  pool.save();
}

export function rewardClaimed(event: RewardClaimed): void {
  let p = event.params;
  let pool = RewardPool.load(jobKey(p.jobId));
  if (pool === null) return;
  pool.claimants = p.claimants.toI32();
  pool.save();
  let s = shareOf(pool.id, p.claimant);
  s.claimedAt = event.block.timestamp;
  s.save();
}

export function rewardCollected(event: RewardCollected): void {
  let p = event.params;
  let pool = RewardPool.load(jobKey(p.jobId));
  if (pool === null) return;
  pool.remaining = pool.remaining.minus(p.share);
  pool.save();
  let s = shareOf(pool.id, p.claimant);
  s.amount = p.share;
  s.collectedAt = event.block.timestamp;
  s.save();
  credit(p.claimant, p.share);
  let v = Validator.load(p.claimant);
  if (v !== null) {
    v.earnings = v.earnings.plus(p.share);
    v.totalChallengerPayouts = v.totalChallengerPayouts.plus(p.share);
    v.save();
  }
  let m = getMarket();
  m.totalChallengerPayouts = m.totalChallengerPayouts.plus(p.share);
  m.save();
  let d = getDay(event);
  d.challengerPayouts = d.challengerPayouts.plus(p.share);
  d.save();
}
