#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Turns a deployment file written by contracts/script/Deploy.s.sol into the subgraph's network
// configuration.
//
//   node scripts/networks.mjs <deployment.json> [--network NAME] [--manifest] [--networks FILE]
//
// It adds (or replaces) the network's entry in networks.json, which `graph build --network NAME`
// reads. With --manifest it also writes subgraph.NAME.yaml, a copy of subgraph.yaml with that
// network's addresses and start blocks, for `graph build subgraph.NAME.yaml`: graph-cli's
// --network rewrites subgraph.yaml itself. NAME defaults to graph-node's name of the chain id.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseDocument } from 'yaml';

const HERE = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** graph-node's network names of the chains Pedals deploys to; a local anvil is `localhost`. */
export const NETWORKS = {
  1: 'mainnet',
  10: 'optimism',
  8453: 'base',
  42161: 'arbitrum-one',
  11155111: 'sepolia',
  11155420: 'optimism-sepolia',
  84532: 'base-sepolia',
  421614: 'arbitrum-sepolia',
  31337: 'localhost',
};

/** Data source name in subgraph.yaml → key of its address in the deployment file. */
export const SOURCES = {
  JobMarket: 'jobMarket',
  StakeManager: 'stakeManager',
  DisputeGame: 'disputeGame',
  LmDisputeGame: 'lmDisputeGame',
  DataAvailability: 'dataAvailability',
};

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** Checks a parsed deployment file; throws on the first missing or malformed key. */
export function validateDeployment(d) {
  if (d === null || typeof d !== 'object') throw new Error('deployment: not a JSON object');
  for (const key of ['chainId', 'deploymentBlock']) {
    if (!Number.isSafeInteger(d[key]) || d[key] < 0) throw new Error(`deployment: ${key} must be a non-negative integer`);
  }
  for (const key of ['deployer', 'admin', 'pauser', 'feeRecipient', 'stakeManager', 'disputeGame', 'lmDisputeGame', 'referee', 'dataAvailability', 'jobMarket']) {
    if (typeof d[key] !== 'string' || !ADDRESS.test(d[key])) throw new Error(`deployment: ${key} must be a 0x-prefixed 20-byte address`);
  }
  return d;
}

export function networkName(chainId) {
  const name = NETWORKS[chainId];
  if (!name) throw new Error(`no graph-node network name known for chain ${chainId}; pass --network`);
  return name;
}

/** The networks.json entry of one deployment: address and start block of each data source. */
export function networkEntry(deployment) {
  validateDeployment(deployment);
  const entry = {};
  for (const [source, key] of Object.entries(SOURCES)) {
    entry[source] = { address: deployment[key], startBlock: deployment.deploymentBlock };
  }
  return entry;
}

/** subgraph.yaml's text with every data source moved to `network` and `entry`; comments stay. */
export function renderManifest(text, network, entry) {
  const doc = parseDocument(text);
  const sources = doc.get('dataSources');
  for (const ds of sources.items) {
    const name = ds.get('name');
    const e = entry[name];
    if (!e) throw new Error(`data source ${name} has no entry for network ${network}`);
    ds.set('network', network);
    ds.setIn(['source', 'address'], e.address);
    ds.setIn(['source', 'startBlock'], e.startBlock);
  }
  return doc.toString({ lineWidth: 0 });
}

function main(argv) {
  const args = { manifest: false, networks: path.join(HERE, 'networks.json') };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--manifest') args.manifest = true;
    else if (a === '--network') args.network = argv[++i];
    else if (a === '--networks') args.networks = argv[++i];
    else if (a === '-h' || a === '--help') return usage(0);
    else rest.push(a);
  }
  if (rest.length !== 1) return usage(2);
  const deployment = validateDeployment(JSON.parse(fs.readFileSync(rest[0], 'utf8')));
  const network = args.network ?? networkName(deployment.chainId);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(network)) throw new Error(`bad network name ${network}`);
  const entry = networkEntry(deployment);

  const all = fs.existsSync(args.networks) ? JSON.parse(fs.readFileSync(args.networks, 'utf8')) : {};
  all[network] = entry;
  fs.writeFileSync(args.networks, JSON.stringify(all, null, 2) + '\n');
  console.error(`${path.relative(process.cwd(), args.networks) || args.networks}: wrote network ${network}`);
  if (args.manifest) {
    const out = path.join(HERE, `subgraph.${network}.yaml`);
    fs.writeFileSync(out, renderManifest(fs.readFileSync(path.join(HERE, 'subgraph.yaml'), 'utf8'), network, entry));
    console.error(`${path.relative(process.cwd(), out)}: written`);
  }
  return 0;
}

function usage(code) {
  console.error('usage: node scripts/networks.mjs <deployment.json> [--network NAME] [--manifest] [--networks FILE]');
  return code;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${e.message}`);
    process.exitCode = 1;
  }
}
