// SPDX-License-Identifier: Apache-2.0
// Checks the manifest against the ABIs the Rust crates use (crates/chain/abi), the schema and the
// mapping sources, so that a contract event without a handler, a handler of an event that no
// longer exists, or a handler that is not exported fails here. With a build present it also
// checks that each compiled mapping exports its handlers.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const manifest = parse(fs.readFileSync(path.join(ROOT, 'subgraph.yaml'), 'utf8'));
const schema = fs.readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8');
const entityTypes = new Set([...schema.matchAll(/^type (\w+) @entity/gm)].map((m) => m[1]));

/** A parameter's type as graph-node writes it in an event signature. */
function typeOf(input) {
  if (input.type.startsWith('tuple')) {
    return `(${input.components.map(typeOf).join(',')})${input.type.slice('tuple'.length)}`;
  }
  return input.type;
}

/** `Name(indexed uint256,address,...)`, the form of `event:` in subgraph.yaml. */
export function signature(event) {
  return `${event.name}(${event.inputs.map((i) => (i.indexed ? 'indexed ' : '') + typeOf(i)).join(',')})`;
}

/** What each helper of src/helpers.ts may create. */
const HELPERS = {
  getMarket: ['Market'],
  getDay: ['MarketDayStat'],
  getAccount: ['Account'],
  credit: ['Account'],
  getProvider: ['Provider', 'Account'],
  getValidator: ['Validator', 'Account'],
  roleGranted: ['Role', 'RoleMember'],
  roleRevoked: ['Role', 'RoleMember'],
  roleAdminChanged: ['Role'],
};

/**
 * The mapping file and the src modules it imports, other than helpers.ts (whose entities are in
 * HELPERS): what the data source's handlers can write. Handlers themselves must be exported by
 * the mapping file, the module graph-node instantiates.
 */
function mappingSources(file) {
  const main = fs.readFileSync(file, 'utf8');
  const local = [...main.matchAll(/ from "\.\/([\w-]+)";$/gm)].map((m) => m[1]).filter((n) => n !== 'helpers');
  return [main, ...local.map((n) => fs.readFileSync(path.join(path.dirname(file), `${n}.ts`), 'utf8'))].join('\n');
}

function abiOf(ds) {
  const entry = ds.mapping.abis.find((a) => a.name === ds.source.abi);
  assert.ok(entry, `${ds.name}: source ABI ${ds.source.abi} is not listed under mapping.abis`);
  const file = path.resolve(ROOT, entry.file);
  const rel = path.relative(path.join(ROOT, '..'), file);
  assert.equal(rel, `crates/chain/abi/${ds.source.abi}.json`, `${ds.name}: ABI must be the committed one`);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  return Array.isArray(json) ? json : json.abi;
}

test('the data sources are the market contracts and both games', () => {
  assert.deepEqual(manifest.dataSources.map((d) => d.name), ['JobMarket', 'StakeManager', 'DisputeGame', 'LmDisputeGame', 'DataAvailability']);
  const networks = new Set(manifest.dataSources.map((d) => d.network));
  assert.equal(networks.size, 1, 'every data source is on the same network');
});

for (const ds of manifest.dataSources) {
  test(`${ds.name}: every ABI event has exactly one handler and every handler an ABI event`, () => {
    const events = abiOf(ds).filter((e) => e.type === 'event').map(signature).sort();
    const handled = ds.mapping.eventHandlers.map((h) => h.event.replace(/\s+/g, ' ').replace(/\s*([(),])\s*/g, '$1'));
    const dup = handled.filter((s, i) => handled.indexOf(s) !== i);
    assert.deepEqual(dup, [], 'events handled twice');
    assert.deepEqual(events.filter((s) => !handled.includes(s)), [], 'ABI events without a handler');
    assert.deepEqual(handled.filter((s) => !events.includes(s)), [], 'handlers of events not in the ABI');
  });

  test(`${ds.name}: handlers are exported by the mapping and entities exist`, () => {
    const src = fs.readFileSync(path.resolve(ROOT, ds.mapping.file), 'utf8');
    const exported = new Set([...src.matchAll(/^export function (\w+)\(/gm)].map((m) => m[1]));
    for (const h of ds.mapping.eventHandlers) {
      assert.ok(exported.has(h.handler), `${h.handler} is not exported by ${ds.mapping.file}`);
      assert.match(src, new RegExp(`export function ${h.handler}\\(event: ${h.event.split('(')[0]}\\)`),
        `${h.handler} takes the ${h.event.split('(')[0]} event`);
    }
    for (const e of ds.mapping.entities) assert.ok(entityTypes.has(e), `entity ${e} is not in schema.graphql`);
    // Entities the mapping creates, itself, through its own modules or through helpers.ts, must be declared.
    const all = mappingSources(path.resolve(ROOT, ds.mapping.file));
    const written = new Set([...all.matchAll(/new (\w+)\(/g)].map((m) => m[1]).filter((n) => entityTypes.has(n)));
    for (const [helper, entities] of Object.entries(HELPERS)) {
      if (new RegExp(`\\b${helper}\\(`).test(all)) entities.forEach((e) => written.add(e));
    }
    for (const e of written) assert.ok(ds.mapping.entities.includes(e), `${ds.name} writes ${e} but does not declare it`);
  });
}

test('the compiled mappings export every handler (after graph build)', { skip: !fs.existsSync(path.join(ROOT, 'build', 'subgraph.yaml')) }, () => {
  for (const ds of manifest.dataSources) {
    const wasm = path.join(ROOT, 'build', ds.name, `${ds.name}.wasm`);
    const module = new WebAssembly.Module(fs.readFileSync(wasm));
    const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
    for (const h of ds.mapping.eventHandlers) assert.ok(exports.has(h.handler), `${wasm} lacks ${h.handler}`);
    const hosts = new Set(WebAssembly.Module.imports(module).map((i) => i.module));
    for (const m of hosts) assert.ok(['env', 'index', 'conversion', 'numbers', 'ethereum', 'json', 'crypto', 'typeConversion', 'dataSource', 'ens', 'ipfs', 'yaml'].includes(m), `unexpected host module ${m}`);
  }
});
