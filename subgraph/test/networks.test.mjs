// SPDX-License-Identifier: Apache-2.0
// The deployment file → networks.json / manifest path (scripts/networks.mjs), and the checked-in
// default network.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { networkEntry, networkName, renderManifest, SOURCES, validateDeployment } from '../scripts/networks.mjs';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'deployment-84532.json');
const deployment = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
const manifestText = fs.readFileSync(path.join(ROOT, 'subgraph.yaml'), 'utf8');

test('chain ids map to graph-node network names', () => {
  assert.equal(networkName(84532), 'base-sepolia');
  assert.equal(networkName(11155420), 'optimism-sepolia');
  assert.equal(networkName(421614), 'arbitrum-sepolia');
  assert.equal(networkName(31337), 'localhost');
  assert.throws(() => networkName(999), /pass --network/);
});

test('a deployment file gives each data source its address and start block', () => {
  assert.deepEqual(networkEntry(deployment), {
    JobMarket: { address: deployment.jobMarket, startBlock: 18345678 },
    StakeManager: { address: deployment.stakeManager, startBlock: 18345678 },
    DisputeGame: { address: deployment.disputeGame, startBlock: 18345678 },
    LmDisputeGame: { address: deployment.lmDisputeGame, startBlock: 18345678 },
    DataAvailability: { address: deployment.dataAvailability, startBlock: 18345678 },
  });
});

test('every data source of the manifest has a key in the deployment file', () => {
  assert.deepEqual(parse(manifestText).dataSources.map((ds) => ds.name).sort(), Object.keys(SOURCES).sort());
});

test('malformed deployment files are refused', () => {
  const { jobMarket, ...missing } = deployment;
  assert.throws(() => validateDeployment(missing), /jobMarket/);
  assert.throws(() => validateDeployment({ ...deployment, stakeManager: '0x1234' }), /stakeManager/);
  assert.throws(() => validateDeployment({ ...deployment, deploymentBlock: '12' }), /deploymentBlock/);
  // A file from before DataAvailability existed has no publisher to index.
  const { dataAvailability, ...older } = deployment;
  assert.throws(() => validateDeployment(older), /dataAvailability/);
  // Nor one from before the fine-tuning game, whose disputes it indexes.
  const { lmDisputeGame, ...noLm } = deployment;
  assert.throws(() => validateDeployment(noLm), /lmDisputeGame/);
  assert.ok(jobMarket && dataAvailability && lmDisputeGame);
});

test('a rendered manifest changes only network, addresses and start blocks', () => {
  const out = renderManifest(manifestText, 'base-sepolia', networkEntry(deployment));
  const before = parse(manifestText);
  const after = parse(out);
  for (const [i, ds] of after.dataSources.entries()) {
    assert.equal(ds.network, 'base-sepolia');
    assert.equal(ds.source.startBlock, 18345678);
    assert.equal(ds.source.address, deployment[SOURCES[ds.name]]);
    const { network, source, ...rest } = ds;
    const { network: n0, source: s0, ...rest0 } = before.dataSources[i];
    assert.deepEqual(rest, rest0);
    assert.equal(source.abi, s0.abi);
  }
  assert.match(out, /^# SPDX-License-Identifier: Apache-2.0/, 'comments survive');
});

test('the CLI merges into networks.json and writes the manifest', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pedals-subgraph-'));
  const networks = path.join(dir, 'networks.json');
  fs.writeFileSync(networks, JSON.stringify({ localhost: { keep: true } }));
  const run = (...args) => execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'networks.mjs'), ...args], { stdio: 'pipe' });
  run(FIXTURE, '--networks', networks, '--network', 'devnet');
  const all = JSON.parse(fs.readFileSync(networks, 'utf8'));
  assert.deepEqual(all.localhost, { keep: true });
  assert.deepEqual(all.devnet, networkEntry(deployment));
  assert.throws(() => run(path.join(dir, 'missing.json'), '--networks', networks), /ENOENT|no such file/);
  fs.rmSync(dir, { recursive: true });
});

test('the checked-in default network matches the manifest and a fresh anvil deployment', () => {
  const committed = JSON.parse(fs.readFileSync(path.join(ROOT, 'networks.json'), 'utf8'));
  const manifest = parse(manifestText);
  const network = manifest.dataSources[0].network;
  assert.equal(network, 'localhost');
  for (const ds of manifest.dataSources) {
    assert.deepEqual(committed[network][ds.name], { address: ds.source.address, startBlock: ds.source.startBlock });
  }
  // Deploy.s.sol from anvil's first account on a fresh chain, as `pedals devnet` runs it
  // (PEDALS_DEVNET_ZK): the linked libraries ProtocolLimits and RewardPools (nonces 0, 1),
  // StakeManager (2), JobMarket (3), bindMarket (4), GameRouter (5), Referee (6),
  // DisputeGame (7), addGame (8), LmProgramReferee (9), LmFullProgramReferee (10),
  // LmElementReferee (11), LmDisputeGame (12), addGame (13), setResolver (14),
  // MnistMlpVerifier (15), registerZkCircuit (16), DataAvailability (17); deploymentBlock =
  // the block before + 1.
  assert.deepEqual(
    Object.keys(committed.localhost),
    manifest.dataSources.map((ds) => ds.name),
    'one entry per data source, in the order of the manifest',
  );
  assert.deepEqual(
    Object.fromEntries(Object.entries(committed.localhost).map(([k, v]) => [k, v.address.toLowerCase()])),
    {
      JobMarket: '0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9',
      StakeManager: '0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0',
      DisputeGame: '0xa513e6e4b8f2a923d98304ec87f64353c4d5c853',
      LmDisputeGame: '0xa51c1fc2f0d1a1b8494ed1fe312d7c3a78ed91c0',
      DataAvailability: '0x9a9f2ccfde556a7e9ff0848998aa4a0cfd8863ae',
    },
  );
});
