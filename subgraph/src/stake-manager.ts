// SPDX-License-Identifier: Apache-2.0
// Handlers of the StakeManager events (contracts/src/interfaces/IStakeManager.sol) and of its
// OpenZeppelin AccessControl events.

import { BigInt, ethereum } from "@graphprotocol/graph-ts";
import {
  CollateralLocked,
  CollateralReleased,
  CollateralSeized,
  MarketBound,
  RoleAdminChanged,
  RoleGranted,
  RoleRevoked,
  Slashed,
  StakeWithdrawn,
  Staked,
  UnbondingDelayUpdated,
  UnstakeRequested,
} from "../generated/StakeManager/StakeManager";
import { Account, ConfigChange, Provider, Slash, StakeEvent } from "../generated/schema";
import {
  eventId,
  getAccount,
  getDay,
  getMarket,
  roleAdminChanged,
  roleGranted,
  roleRevoked,
} from "./helpers";

function stakeEvent(event: ethereum.Event, kind: string, account: Account, amount: BigInt): StakeEvent {
  let s = new StakeEvent(eventId(event));
  s.kind = kind;
  s.account = account.id;
  s.amount = amount;
  s.blockNumber = event.block.number;
  s.timestamp = event.block.timestamp;
  s.transactionHash = event.transaction.hash;
  return s;
}

function newSlash(event: ethereum.Event, kind: string, account: Account, amount: BigInt): Slash {
  let s = new Slash(eventId(event));
  s.kind = kind;
  s.reason = "Other";
  s.account = account.id;
  s.amount = amount;
  s.by = event.address;
  s.blockNumber = event.block.number;
  s.timestamp = event.block.timestamp;
  s.transactionHash = event.transaction.hash;
  return s;
}

export function handleStaked(event: Staked): void {
  let a = getAccount(event.params.account);
  a.staked = event.params.totalStaked;
  a.totalStakeDeposited = a.totalStakeDeposited.plus(event.params.amount);
  a.save();
  let s = stakeEvent(event, "Staked", a, event.params.amount);
  s.totalStaked = event.params.totalStaked;
  s.save();
  let m = getMarket();
  m.stakeManager = event.address;
  m.totalStake = m.totalStake.plus(event.params.amount);
  m.save();
  let d = getDay(event);
  d.stakeDeposited = d.stakeDeposited.plus(event.params.amount);
  d.save();
}

export function handleUnstakeRequested(event: UnstakeRequested): void {
  let a = getAccount(event.params.account);
  a.staked = a.staked.minus(event.params.amount);
  a.unbonding = a.unbonding.plus(event.params.amount);
  a.unbondsAt = event.params.unbondsAt;
  a.save();
  let s = stakeEvent(event, "UnstakeRequested", a, event.params.amount);
  s.unbondsAt = event.params.unbondsAt;
  s.save();
}

export function handleStakeWithdrawn(event: StakeWithdrawn): void {
  let a = getAccount(event.params.account);
  a.unbonding = a.unbonding.minus(event.params.amount);
  a.unbondsAt = null;
  a.totalStakeWithdrawn = a.totalStakeWithdrawn.plus(event.params.amount);
  a.save();
  stakeEvent(event, "StakeWithdrawn", a, event.params.amount).save();
  let m = getMarket();
  m.totalStake = m.totalStake.minus(event.params.amount);
  m.save();
  let d = getDay(event);
  d.stakeWithdrawn = d.stakeWithdrawn.plus(event.params.amount);
  d.save();
}

export function handleCollateralLocked(event: CollateralLocked): void {
  let a = getAccount(event.params.account);
  a.locked = a.locked.plus(event.params.amount);
  a.save();
  stakeEvent(event, "CollateralLocked", a, event.params.amount).save();
  let m = getMarket();
  m.totalLocked = m.totalLocked.plus(event.params.amount);
  m.save();
}

export function handleCollateralReleased(event: CollateralReleased): void {
  let a = getAccount(event.params.account);
  a.locked = a.locked.minus(event.params.amount);
  a.save();
  stakeEvent(event, "CollateralReleased", a, event.params.amount).save();
  let m = getMarket();
  m.totalLocked = m.totalLocked.minus(event.params.amount);
  m.save();
}

export function handleCollateralSeized(event: CollateralSeized): void {
  let amount = event.params.amount;
  let a = getAccount(event.params.account);
  a.locked = a.locked.minus(amount);
  a.staked = a.staked.minus(amount);
  a.totalSlashed = a.totalSlashed.plus(amount);
  a.save();
  let s = newSlash(event, "CollateralSeized", a, amount);
  // The market's JobExpired or DisputeResolved came first in this transaction and named the job.
  let p = Provider.load(event.params.account);
  if (p !== null) {
    p.collateralSeized = p.collateralSeized.plus(amount);
    let tx = p.pendingSeizureTx;
    if (tx !== null && tx.equals(event.transaction.hash)) {
      s.job = p.pendingSeizureJob;
      let reason = p.pendingSeizureReason;
      if (reason !== null) s.reason = reason;
    }
    p.pendingSeizureTx = null;
    p.pendingSeizureJob = null;
    p.pendingSeizureReason = null;
    p.save();
  }
  s.save();
  let m = getMarket();
  m.totalLocked = m.totalLocked.minus(amount);
  m.totalStake = m.totalStake.minus(amount);
  m.totalCollateralSeized = m.totalCollateralSeized.plus(amount);
  m.save();
  let d = getDay(event);
  d.collateralSeized = d.collateralSeized.plus(amount);
  d.save();
}

export function handleSlashed(event: Slashed): void {
  let amount = event.params.amount;
  let a = getAccount(event.params.account);
  // Free stake goes first, then unbonding stake (IStakeManager.slash).
  let free = a.staked.minus(a.locked);
  if (free.ge(amount)) {
    a.staked = a.staked.minus(amount);
  } else {
    a.staked = a.staked.minus(free);
    a.unbonding = a.unbonding.minus(amount.minus(free));
  }
  a.totalSlashed = a.totalSlashed.plus(amount);
  a.save();
  let s = newSlash(event, "StakeSlashed", a, amount);
  s.by = event.params.slasher;
  s.save();
  let m = getMarket();
  m.totalStake = m.totalStake.minus(amount);
  m.totalSlashed = m.totalSlashed.plus(amount);
  m.save();
  let d = getDay(event);
  d.stakeSlashed = d.stakeSlashed.plus(amount);
  d.save();
}

export function handleUnbondingDelayUpdated(event: UnbondingDelayUpdated): void {
  let c = new ConfigChange(eventId(event));
  c.kind = "UnbondingDelayUpdated";
  c.contract = event.address;
  c.oldValue = event.params.oldDelay;
  c.newValue = event.params.newDelay;
  c.blockNumber = event.block.number;
  c.timestamp = event.block.timestamp;
  c.transactionHash = event.transaction.hash;
  c.save();
  let m = getMarket();
  m.stakeManager = event.address;
  m.unbondingDelay = event.params.newDelay;
  m.save();
}

export function handleMarketBound(event: MarketBound): void {
  let c = new ConfigChange(eventId(event));
  c.kind = "MarketBound";
  c.contract = event.address;
  c.account = event.params.market;
  c.blockNumber = event.block.number;
  c.timestamp = event.block.timestamp;
  c.transactionHash = event.transaction.hash;
  c.save();
  let m = getMarket();
  m.stakeManager = event.address;
  m.jobMarket = event.params.market;
  m.save();
}

export function handleRoleGranted(event: RoleGranted): void {
  roleGranted(event, event.params.role, event.params.account, event.params.sender);
}

export function handleRoleRevoked(event: RoleRevoked): void {
  roleRevoked(event, event.params.role, event.params.account, event.params.sender);
}

export function handleRoleAdminChanged(event: RoleAdminChanged): void {
  roleAdminChanged(event, event.params.role, event.params.newAdminRole);
}
