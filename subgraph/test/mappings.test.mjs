// SPDX-License-Identifier: Apache-2.0
// Runs the AssemblyScript mappings against events without graph-node: the scenario files of
// test/wasm/ (the entry files harness.ts and availability.ts, with support.ts) and src/ are
// compiled with the AssemblyScript compiler graph-cli pins and the same flags as `graph build`,
// and this file plays the host, with the functions the mappings import.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const OUT = path.join(ROOT, 'build', 'test', 'harness.wasm');
/** Entry files: each one's exports are the module's (the store is in harness.ts). */
const ENTRIES = ['test/wasm/harness.ts', 'test/wasm/availability.ts', 'test/wasm/lm.ts'];

function compile() {
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'asc'), [
    ...ENTRIES, 'node_modules/@graphprotocol/graph-ts/global/global.ts',
    '--explicitStart', '--exportRuntime', '--runtime', 'stub', '--baseDir', '.', '--lib', 'node_modules',
    '--outFile', OUT, '--debug',
  ], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}

/** Instantiates the harness with a host that implements what graph-node would. */
async function instantiate() {
  const module = await WebAssembly.compile(fs.readFileSync(OUT));
  let ex;
  const logs = [];
  const mem = () => new DataView(ex.memory.buffer);
  const str = (ptr) => {
    if (ptr === 0) return null;
    const len = mem().getUint32(ptr - 4, true);
    return Buffer.from(ex.memory.buffer, ptr, len).toString('utf16le');
  };
  const bytes = (ptr) => {
    const start = mem().getUint32(ptr + 4, true);
    const len = mem().getInt32(ptr + 8, true);
    return Buffer.from(new Uint8Array(ex.memory.buffer, start, len));
  };
  const newBytes = (buf) => {
    const ptr = ex.newBytes(buf.length);
    new Uint8Array(ex.memory.buffer, mem().getUint32(ptr + 4, true), buf.length).set(buf);
    return ptr;
  };
  const newStr = (s) => ex.bytesToString(newBytes(Buffer.from(s, 'utf8')));
  // graph-ts BigInts are little-endian two's complement byte arrays.
  const toBig = (ptr) => {
    const b = bytes(ptr);
    if (b.length === 0) return 0n;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return b[b.length - 1] & 0x80 ? v - (1n << BigInt(8 * b.length)) : v;
  };
  const fromBig = (v) => {
    const out = [];
    let x = v;
    for (;;) {
      const byte = Number(BigInt.asUintN(8, x));
      out.push(byte);
      x >>= 8n;
      if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) break;
    }
    return newBytes(Buffer.from(out));
  };
  const host = {
    env: {
      abort: (msg, file, line, col) => {
        throw new Error(`abort: ${str(msg)} (${str(file)}:${line}:${col})`);
      },
    },
    index: {
      'store.get': (entity, id) => ex.storeGet(entity, id),
      'store.set': (entity, id, data) => ex.storeSet(entity, id, data),
      'log.log': (level, msg) => logs.push([level, str(msg)]),
    },
    conversion: {
      'typeConversion.bytesToHex': (b) => newStr('0x' + bytes(b).toString('hex')),
      'typeConversion.bigIntToString': (b) => newStr(toBig(b).toString()),
      'typeConversion.bigIntToHex': (b) => newStr('0x' + toBig(b).toString(16)),
    },
    numbers: {
      'bigInt.plus': (x, y) => fromBig(toBig(x) + toBig(y)),
      'bigInt.minus': (x, y) => fromBig(toBig(x) - toBig(y)),
      'bigInt.times': (x, y) => fromBig(toBig(x) * toBig(y)),
      'bigInt.dividedBy': (x, y) => fromBig(toBig(x) / toBig(y)),
      'bigInt.mod': (x, y) => fromBig(toBig(x) % toBig(y)),
      'bigInt.fromString': (s) => fromBig(BigInt(str(s))),
    },
  };
  // Anything else the mappings import fails the test when called, not when linking.
  for (const imp of WebAssembly.Module.imports(module)) {
    host[imp.module] ??= {};
    host[imp.module][imp.name] ??= () => {
      throw new Error(`host function ${imp.module}.${imp.name} is not provided by the test host`);
    };
  }
  const instance = await WebAssembly.instantiate(module, host);
  ex = instance.exports;
  ex._start();
  return { ex, logs };
}

test('the scenario calls every handler of the manifest', () => {
  const dir = path.join(ROOT, 'test', 'wasm');
  const harness = fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
  const prefix = { JobMarket: 'jm', StakeManager: 'sm', DisputeGame: 'dg', LmDisputeGame: 'lm', DataAvailability: 'da' };
  const manifest = parse(fs.readFileSync(path.join(ROOT, 'subgraph.yaml'), 'utf8'));
  for (const ds of manifest.dataSources) {
    for (const h of ds.mapping.eventHandlers) {
      assert.ok(harness.includes(`${prefix[ds.name]}.${h.handler}(`), `${ds.name}.${h.handler} is never called`);
    }
  }
});

test('the mappings index a market from deployment to payouts', async (t) => {
  compile();
  const { ex, logs } = await instantiate();
  // Each step checks the entities it produced; they build on each other, in this order.
  for (const step of ['deployAndStake', 'disputeWorkerLost', 'cancelAndExpire', 'timeoutThenFinalize', 'zkProveAndCancel', 'payoutsAndAdmin', 'demandMet', 'demandUnmet', 'dailyStats', 'lmDisputeWorkerLost']) {
    await t.test(step, () => ex[step]());
  }
  assert.ok(ex.entityCount() > 50, `entities stored: ${ex.entityCount()}`);
  assert.deepEqual(logs.filter(([level]) => level <= 2), [], 'no error or warning logs');
});
