// Redis writes and reads of user state: FeatureStore.writeStates (Lua compare-and-set + encoding)
// beside raw pipelined HSET of the same fields and value sizes on the same client, and
// FeatureStore.loadStates (batched read + decoding) beside raw HMGET of the same fields, and the
// batched read alone beside one HMGET per user.
import { decodeWindow, encodeHighWater, encodeVector, encodeWindow } from '../featurestore/codec.js';
import { decodeWindowFixed, encodeWindowFixed } from './lib/codec-alternatives.js';
import { FeatureStore } from '../featurestore/feature-store.js';
import { StateFields } from '../featurestore/keys.js';
import { MultiHashReader } from '../featurestore/multi-hash-read.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { Random } from '../simulator/random.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, unique } from './lib/env.js';
import { Report } from './lib/report.js';
import { deleteKeys } from './lib/services.js';
import { fmt, pairedLoop, quantile, spread } from './lib/stats.js';
import { syntheticWindow } from './lib/windows.js';

const args = benchArgs({ batch: { type: 'string' }, 'min-ms': { type: 'string' } });
const report = new Report('redis-write');
const B = numberArg(args, 'batch', 256);
const minMs = numberArg(args, 'min-ms', args.long ? 3000 : 800);
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
// The consumer's client settings (auto-pipelining, no offline queue, command timeout).
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench' });
await waitForRedis(redis);
const prefix = unique('rw');
const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: prefix });
const rng = new Random('redis-write');
const users = Array.from({ length: B }, (_, i) => `user-${i}`);
const updates = users.map((userId) => ({
  userId,
  expectedVersion: 0,
  window: syntheticWindow(rng, metadata.maxSeqLen, metadata, Date.UTC(2026, 0, 1), rng.int(4)),
  highWater: new Map([
    [`taste.plays.v1:${rng.int(32)}`, 1_000_000_000 + rng.int(1e9)],
    [`taste.searches.v1:${rng.int(32)}`, 10_000_000 + rng.int(1e8)],
  ]),
  embedding: new Float32Array(metadata.embeddingDim).map(() => rng.float() - 0.5),
  updatedMs: Date.now(),
  appliedTotal: 1000,
}));
const fieldsOf = (u: (typeof updates)[number]): (string | Buffer)[] => [
  StateFields.window,
  encodeWindow(u.window, metadata.queryTokens),
  StateFields.highWater,
  encodeHighWater(u.highWater),
  StateFields.embedding,
  encodeVector(u.embedding),
  StateFields.updatedMs,
  String(u.updatedMs),
  StateFields.lastEventMs,
  String(u.window[u.window.length - 1]!.eventTimeMs),
  StateFields.eventsInWindow,
  String(u.window.length),
  StateFields.appliedTotal,
  String(u.appliedTotal),
];
const encoded = updates.map(fieldsOf);
const valueBytes = encoded[0]!.reduce((sum, v) => sum + Buffer.byteLength(v), 0);
report.info(`batch ${B} users, L=${metadata.maxSeqLen}, D=${metadata.embeddingDim}: ${valueBytes} bytes of fields+values per user; ${args.repeats} repeats of ≥${minMs} ms`);

// The store's script: state key, tombstone key, versions set; expected version, expected tombstone, model version; fields.
type Scripted = { tasteWriteState(key: string, tombstone: string, versions: string, expected: string, expectedTombstone: string, modelVersion: string, ...rest: (string | Buffer)[]): Promise<number> };
const scripted = redis as unknown as Scripted;
const rawKeys = users.map((u) => `${prefix}:raw:{${u}}`);

try {
  const cas: number[] = [];
  const lua: number[] = [];
  const raw: number[] = [];
  let version = 0;
  let luaVersion = 0;
  const luaKeys = users.map((u) => `${prefix}:lua:{${u}}`);
  for (let r = 0; r < args.repeats; r++) {
    const [a, b, c] = await pairedLoop(
      [
        async () => {
          for (const u of updates) u.expectedVersion = version;
          const outcomes = await store.writeStates(updates);
          if (outcomes.some((o) => o !== 'written')) throw new Error('writeStates lost a race nobody runs');
          version++;
        },
        async () => {
          const results = await Promise.all(luaKeys.map((key, i) => scripted.tasteWriteState(key, `${key}:erased`, `${key}:versions`, String(luaVersion), '', metadata.modelVersion, ...encoded[i]!)));
          if (results.some((x) => x !== 1)) throw new Error('Lua CAS lost a race nobody runs');
          luaVersion++;
        },
        () => Promise.all(rawKeys.map((key, i) => redis.hset(key, StateFields.version, String(version), ...encoded[i]!))),
      ],
      { minMs, blockMs: minMs / 4, minRounds: 2 },
    );
    const rate = (times: number[]) => (B * times.length * 1000) / times.reduce((s, t) => s + t, 0);
    cas.push(rate(a!));
    lua.push(rate(b!));
    raw.push(rate(c!));
  }
  const casS = spread(cas);
  const luaS = spread(lua);
  const rawS = spread(raw);
  report.info(`writes/s: writeStates ${fmt(casS.median)}, Lua CAS on pre-encoded values ${fmt(luaS.median)}, raw HSET ${fmt(rawS.median)}`);
  report.figure({
    id: 'redis.write_cas_vs_hset',
    label: `FeatureStore.writeStates (encode + Lua CAS), ${B} users per call, vs raw pipelined HSET of the same values`,
    unit: 'writes/s',
    value: casS.median,
    spread: casS,
    ceiling: rawS.median,
    ceilingSpread: rawS,
    ceilingLabel: 'raw HSET (pipelined, same client)',
  });
  report.figure({
    id: 'redis.write_lua_vs_hset',
    label: 'Lua CAS alone (pre-encoded values) vs raw HSET: the cost of the compare-and-set in Redis',
    unit: 'writes/s',
    value: luaS.median,
    spread: luaS,
    ceiling: rawS.median,
    ceilingSpread: rawS,
    ceilingLabel: 'raw HSET',
  });

  // Reads as the updater does them: HMGET ver, win, hw, total + decoding.
  const readFields = [StateFields.version, StateFields.window, StateFields.highWater, StateFields.appliedTotal];
  const keys = users.map((u) => store.key(u));
  const loads: number[] = [];
  const hmgets: number[] = [];
  for (let r = 0; r < args.repeats; r++) {
    const [a, b] = await pairedLoop(
      [() => store.loadStates(users), () => Promise.all(keys.map((key) => redis.hmgetBuffer(key, ...readFields)))],
      { minMs, blockMs: minMs / 4, minRounds: 2 },
    );
    const rate = (times: number[]) => (B * times.length * 1000) / times.reduce((s, t) => s + t, 0);
    loads.push(rate(a!));
    hmgets.push(rate(b!));
  }
  const loadS = spread(loads);
  const hmgetS = spread(hmgets);
  report.info(`reads/s: loadStates ${fmt(loadS.median)}, raw HMGET ${fmt(hmgetS.median)}`);
  report.figure({
    id: 'redis.load_vs_hmget',
    label: `FeatureStore.loadStates (HMGET + decode window/high-water), ${B} users per call, vs raw HMGET of the same fields`,
    unit: 'reads/s',
    value: loadS.median,
    spread: loadS,
    ceiling: hmgetS.median,
    ceilingSpread: hmgetS,
    ceilingLabel: 'raw HMGET (pipelined, same client)',
  });

  // The batched read itself (featurestore/multi-hash-read.ts): one script per node and a packed
  // reply, against one HMGET per hash on the same client, for the updater's fields (a batch of B)
  // and serving's (a batch of 100). CPU of this process per batch: the client's cost, which is
  // what the script removes (Redis does the same HMGETs either way).
  const multiRead = new MultiHashReader(redis);
  const servingFields = [StateFields.embedding, StateFields.updatedMs, StateFields.lastEventMs, StateFields.eventsInWindow];
  for (const [what, batchKeys, fields] of [
    ['updater', keys, readFields],
    ['serving', keys.slice(0, 100), servingFields],
  ] as const) {
    const expected = await Promise.all(batchKeys.map((key) => redis.hmgetBuffer(key, ...fields)));
    const viaScript = await multiRead.read(batchKeys, fields);
    if (!multiRead.usesScript || viaScript.some((row, i) => row.some((value, f) => !(value === null ? expected[i]![f] === null : value.equals(expected[i]![f]!))))) {
      throw new Error('the batched read and HMGET disagree (or the script was refused)');
    }
    const scriptUs: number[] = [];
    const eachUs: number[] = [];
    for (let r = 0; r < args.repeats; r++) {
      for (const [into, read] of [
        [scriptUs, () => multiRead.read(batchKeys, fields)],
        [eachUs, () => Promise.all(batchKeys.map((key) => redis.hmgetBuffer(key, ...fields)))],
      ] as const) {
        const cpu0 = process.cpuUsage();
        let calls = 0;
        const until = performance.now() + minMs;
        while (performance.now() < until) {
          await read();
          calls++;
        }
        const cpu = process.cpuUsage(cpu0);
        into.push((cpu.user + cpu.system) / calls);
      }
    }
    const scriptS = spread(scriptUs);
    const eachS = spread(eachUs);
    report.info(`${what} batch of ${batchKeys.length}: per-node script ${scriptS.median.toFixed(0)} µs CPU, one HMGET each ${eachS.median.toFixed(0)} µs CPU`);
    report.figure({
      id: `redis.multi_read.${what}`,
      label: `client CPU per batched read of ${batchKeys.length} users' ${what} fields: one script per node with a packed reply vs one HMGET per user (auto-pipelined)`,
      unit: 'µs CPU/batch',
      value: scriptS.median,
      spread: scriptS,
      ceiling: eachS.median,
      ceilingSpread: eachS,
      ceilingLabel: 'one HMGET per user',
      lowerIsBetter: true,
      goal: { kind: 'max-ratio', target: 0.5 },
    });
  }

  // The window codec alone (format 2, variable-length records) beside format 1 (fixed records):
  // encode + decode of the same windows, and their bytes.
  const windows = updates.map((u) => u.window);
  for (const w of windows) {
    if (JSON.stringify(decodeWindow(encodeWindow(w, metadata.queryTokens))) !== JSON.stringify(decodeWindowFixed(encodeWindowFixed(w, metadata.queryTokens)))) {
      throw new Error('format 1 and format 2 windows decode differently');
    }
  }
  const current: number[] = [];
  const fixed: number[] = [];
  for (let r = 0; r < args.repeats; r++) {
    const [a, b] = await pairedLoop(
      [
        () => windows.forEach((w) => decodeWindow(encodeWindow(w, metadata.queryTokens))),
        () => windows.forEach((w) => decodeWindowFixed(encodeWindowFixed(w, metadata.queryTokens))),
      ],
      { minMs: minMs / 2, minRounds: 20, warmupRounds: 10 },
    );
    current.push((quantile(a!, 0.5) * 1000) / B);
    fixed.push((quantile(b!, 0.5) * 1000) / B);
  }
  const currentS = spread(current);
  const fixedS = spread(fixed);
  const bytesNow = windows.reduce((sum, w) => sum + encodeWindow(w, metadata.queryTokens).length, 0) / B;
  const bytesFixed = windows.reduce((sum, w) => sum + encodeWindowFixed(w, metadata.queryTokens).length, 0) / B;
  report.info(`window codec encode+decode: format 2 ${currentS.median.toFixed(2)} µs/user, format 1 ${fixedS.median.toFixed(2)} µs/user; ${bytesNow.toFixed(0)} vs ${bytesFixed.toFixed(0)} bytes`);
  report.figure({
    id: 'redis.codec.v2_vs_v1',
    label: `window encode + decode, format 2 (variable-length records) vs format 1 (fixed), L=${metadata.maxSeqLen}`,
    unit: 'µs/user',
    value: currentS.median,
    spread: currentS,
    ceiling: fixedS.median,
    ceilingSpread: fixedS,
    ceilingLabel: 'format 1 codec (fixed records, Buffer methods)',
    lowerIsBetter: true,
  });
  report.figure({
    id: 'redis.codec.bytes_v2_vs_v1',
    label: `stored window bytes, format 2 vs format 1, L=${metadata.maxSeqLen} (synthetic windows, searches as in the simulator)`,
    unit: 'bytes/user',
    value: bytesNow,
    ceiling: bytesFixed,
    ceilingLabel: 'format 1',
    lowerIsBetter: true,
  });
} finally {
  await deleteKeys(redis, prefix);
  redis.disconnect();
}
report.finish(OUT_DIR);
