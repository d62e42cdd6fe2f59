// Model cost per event against history length, both model kinds, in one run; and Redis bytes per user.
// Stateful: users with 50 and with 1,000 events of history (their real checkpoint and tail, made by
// the StatefulAdvancer), each advanced by one new event: the step the stream runs. Windowed (today's
// transformer): the same update re-encodes the newest T events, T = 50 (what it keeps) and T = 1,000
// (what covering the same history would cost it).
import { existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { MODEL_OUTPUT, STEP_CHECKPOINT_OUTPUT } from '../model/contract.js';
import { buildStepBatch, type StepInput } from '../model/features.js';
import type { WindowEvent } from '../events/window-event.js';
import { InferencePool } from '../model/inference-pool.js';
import { loadModelBundle, type ModelBundle } from '../model/model-bundle.js';
import { FeatureStore, WriteOutcomes } from '../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { advancerFor, planStatefulUpdate } from '../updater/advance.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, REPO_ROOT, stringArg, unique } from './lib/env.js';
import { ortSession, stepFeedsOf, syntheticFeeds } from './lib/ort.js';
import { Report } from './lib/report.js';
import { fmt, pairedLoop, quantile, spread } from './lib/stats.js';
import { syntheticWindows } from './lib/windows.js';

const args = benchArgs({ 'stateful-model': { type: 'string' }, 'min-ms': { type: 'string' }, batch: { type: 'string' } });
const report = new Report('history-cost');
const shipped = `${REPO_ROOT}models/stateful`;
const statefulDir = stringArg(args, 'stateful-model', existsSync(shipped) ? shipped : `${REPO_ROOT}model/testdata/stateful-model`);
const minMs = numberArg(args, 'min-ms', args.long ? 2000 : 500);
const batch = numberArg(args, 'batch', 256);
// 50 and 1,000 are the figures; the points between draw the curve (bench/figures/history-cost.png).
const histories = [50, 100, 200, 500, 1000];

const stateful = await loadModelBundle(statefulDir);
const windowed = await loadModelBundle(MODEL_DIR);
const shape = stateful.metadata.stateful;
if (!shape) throw new Error(`${statefulDir} is not a stateful model`);
report.info(`stateful ${stateful.metadata.modelVersion} (S=${shape.stateDim}, tail ${shape.tailEvents}, D=${stateful.metadata.embeddingDim}); windowed ${windowed.metadata.modelVersion} (L=${windowed.metadata.maxSeqLen}); batch ${batch} (windowed: 32), 1 intra-op thread`);

/** Each user's history advanced for real, then the step input that applies one new event. */
async function nextSteps(bundle: ModelBundle, history: number): Promise<{ steps: StepInput[]; states: { window: WindowEvent[]; checkpoint: { state: Float32Array; lastEventMs: number | undefined } }[] }> {
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1 });
  try {
    const advancer = advancerFor(bundle.metadata, { embedder: pool, stepper: pool });
    const users = syntheticWindows(batch, history + 1, bundle.metadata, history);
    const advanced = await advancer.advance(users.map((events) => ({ state: { version: 0, window: [], highWater: new Map(), appliedTotal: 0 }, fresh: events.slice(0, history) })));
    const steps = advanced.map((user, index) => {
      const plan = planStatefulUpdate(user.window, [users[index]![history]!], shape!.tailEvents);
      return { state: user.checkpoint!.state, previousEventMs: user.checkpoint!.lastEventMs, events: plan.events, checkpointAt: plan.settle };
    });
    return { steps, states: advanced.map((user) => ({ window: user.window, checkpoint: user.checkpoint! })) };
  } finally {
    await pool.close();
  }
}

function stepFeeds(steps: StepInput[]): Record<string, ort.Tensor> {
  return stepFeedsOf(buildStepBatch(steps, stateful.metadata.queryTokens, shape!.stateDim));
}

const statefulSession = await ortSession(stateful, 1, false);
const windowedSession = await ortSession(windowed, 1, false);
const statefulFeeds = [];
const statesByHistory = new Map<number, Awaited<ReturnType<typeof nextSteps>>['states']>();
for (const h of histories) {
  const { steps, states } = await nextSteps(stateful, h);
  statefulFeeds.push(stepFeeds(steps));
  statesByHistory.set(h, states);
}
// attention at T = 1,000 holds [B, heads, T, T] floats: 32 users keep that within memory
const windowedBatch = Math.min(batch, 32);
const windowedFeeds = histories.map((h) => syntheticFeeds(windowed, windowedBatch, h, h));
const runs = [
  ...statefulFeeds.map((feeds) => () => statefulSession.run(feeds, [STEP_CHECKPOINT_OUTPUT, MODEL_OUTPUT])),
  ...windowedFeeds.map((feeds) => () => windowedSession.run(feeds, [MODEL_OUTPUT])),
];
const perEvent: number[][] = runs.map(() => []);
for (let r = 0; r < args.repeats; r++) {
  const times = await pairedLoop(runs, { minMs, blockMs: minMs / 8, minRounds: 2 });
  // µs per user update (one new event)
  times.forEach((calls, i) => perEvent[i]!.push((quantile(calls, 0.5) * 1000) / (i < statefulFeeds.length ? batch : windowedBatch)));
}
const statefulCost = perEvent.slice(0, histories.length).map(spread);
const windowedCost = perEvent.slice(histories.length).map(spread);
const s50 = statefulCost[0]!;
const s1000 = statefulCost[histories.length - 1]!;
const w50 = windowedCost[0]!;
const w1000 = windowedCost[histories.length - 1]!;
const line = (label: string, cost: typeof statefulCost) => ({ label, x: histories, y: cost.map((c) => c.median), low: cost.map((c) => c.min), high: cost.map((c) => c.max) });
report.plot({
  id: 'history-cost',
  kind: 'lines',
  title: 'Model cost per new event against history length',
  caption: `ONNX Runtime, 1 intra-op thread; stateful batch ${batch}, windowed batch ${windowedBatch}; median of ${args.repeats} repeats, band min–max`,
  xLabel: 'events of history the embedding covers',
  yLabel: 'µs per new event',
  xLog: true,
  yLog: true,
  lines: [line(`stateful (${stateful.metadata.modelVersion}): checkpoint + tail + 1 event`, statefulCost), line('windowed transformer: re-encodes the whole window', windowedCost)],
});
report.info(`µs per event by history ${histories.join('/')}: stateful ${statefulCost.map((c) => fmt(c.median)).join('/')}; windowed ${windowedCost.map((c) => fmt(c.median)).join('/')}`);
report.figure({
  id: 'history.stateful.h1000_vs_h50',
  label: 'stateful model, ORT µs per new event, history 1,000 vs 50 (checkpoint + tail + 1 event per step)',
  unit: 'µs/event',
  value: s1000.median,
  spread: s1000,
  ceiling: s50.median,
  ceilingSpread: s50,
  ceilingLabel: 'history 50',
  lowerIsBetter: true,
  goal: { kind: 'max-ratio', target: 1.1 },
});
report.figure({
  id: 'history.windowed.t1000_vs_t50',
  label: 'windowed transformer (today), ORT µs per update, window 1,000 vs 50 events',
  unit: 'µs/event',
  value: w1000.median,
  spread: w1000,
  ceiling: w50.median,
  ceilingSpread: w50,
  ceilingLabel: 'window 50',
  lowerIsBetter: true,
});
report.figure({
  id: 'history.stateful_vs_windowed.h50',
  label: 'ORT µs per new event: stateful (history 50) vs windowed transformer (window 50)',
  unit: 'µs/event',
  value: s50.median,
  spread: s50,
  ceiling: w50.median,
  ceilingSpread: w50,
  ceilingLabel: 'windowed, T=50',
  lowerIsBetter: true,
});

// Redis bytes per user: the stateful model's stored fields after 1,000 events vs the windowed model's
// after 50, with Redis's default hash encoding and again with hashes kept as listpacks
// (hash-max-listpack-value 4096, docs/deployment.md): a user's hash has one field over the default's
// 64-byte limit, so by default it is a hashtable, whose per-field entries cost about 90 B each.
const redis = createRedisClient({ url: REDIS_URL });
await waitForRedis(redis);
const LISTPACK_VALUE_LIMIT = '4096';
try {
  const [, defaultLimit] = (await redis.call('CONFIG', 'GET', 'hash-max-listpack-value')) as [string, string];
  const measure = async (limit: string) => {
    await redis.call('CONFIG', 'SET', 'hash-max-listpack-value', limit);
    try {
      const prefix = unique('history-bytes');
      const memory: Record<string, number[]> = { stateful: [], windowed: [] };
      const sample = 64;
      const statefulStore = new FeatureStore({ redis, modelVersion: stateful.metadata.modelVersion, queryTokens: stateful.metadata.queryTokens, stateDim: shape.stateDim, keyPrefix: prefix });
      const windowedStore = new FeatureStore({ redis, modelVersion: windowed.metadata.modelVersion, queryTokens: windowed.metadata.queryTokens, keyPrefix: prefix });
      const states = statesByHistory.get(1000)!.slice(0, sample);
      const highWater = new Map([['plays:0', 1_000_999]]);
      await statefulStore.writeStates(states.map((s, i) => ({ userId: `u${i}`, expectedVersion: 0, window: s.window, checkpoint: s.checkpoint, highWater, embedding: new Float32Array(stateful.metadata.embeddingDim).fill(0.1), updatedMs: 1_767_225_600_000, appliedTotal: 1000 })));
      const windows = syntheticWindows(sample, windowed.metadata.maxSeqLen, windowed.metadata, 3);
      await windowedStore.writeStates(windows.map((window, i) => ({ userId: `u${i}`, expectedVersion: 0, window, highWater, embedding: new Float32Array(windowed.metadata.embeddingDim).fill(0.1), updatedMs: 1_767_225_600_000, appliedTotal: 1000 })));
      const users = [...Array(sample).keys()].map((i) => `u${i}`);
      // What the stream pays per write in each encoding: compare-and-set rewrites of every user's state.
      const rewrites = 50;
      const writeStarted = performance.now();
      for (let r = 0; r < rewrites; r++) {
        const loaded = await statefulStore.loadStates(users);
        const outcomes = await statefulStore.writeStates(states.map((s, i) => ({ userId: `u${i}`, expectedVersion: loaded.get(`u${i}`)!.version, window: s.window, checkpoint: s.checkpoint, highWater, embedding: new Float32Array(stateful.metadata.embeddingDim).fill(0.1), updatedMs: 1_767_225_600_000 + r, appliedTotal: 1000 + r })));
        if (outcomes.some((outcome) => outcome !== WriteOutcomes.WRITTEN)) throw new Error('history-cost: a rewrite lost its compare-and-set with no other writer');
      }
      const writeUs = ((performance.now() - writeStarted) * 1000) / (rewrites * sample);
      const encodings = new Set<string>();
      for (const user of users) {
        memory.stateful!.push(Number(await redis.call('MEMORY', 'USAGE', statefulStore.key(user), 'SAMPLES', '0')));
        memory.windowed!.push(Number(await redis.call('MEMORY', 'USAGE', windowedStore.key(user), 'SAMPLES', '0')));
        encodings.add(String(await redis.call('OBJECT', 'ENCODING', statefulStore.key(user))));
      }
      // What serving pays per read in each encoding: the embedding fields of all the users, repeatedly.
      const reads = 200;
      const started = performance.now();
      for (let r = 0; r < reads; r++) await statefulStore.readEmbeddingResults(users);
      const readUs = ((performance.now() - started) * 1000) / (reads * sample);
      await redis.del(...users.flatMap((user) => [statefulStore.key(user), windowedStore.key(user)]));
      return { stateful: quantile(memory.stateful!, 0.5), windowed: quantile(memory.windowed!, 0.5), encoding: [...encodings].join(','), readUs, writeUs };
    } finally {
      await redis.call('CONFIG', 'SET', 'hash-max-listpack-value', defaultLimit);
    }
  };
  // Twice each, alternating; the second round is reported (the first warms up the code and the server).
  await measure(defaultLimit);
  await measure(LISTPACK_VALUE_LIMIT);
  const byDefault = await measure(defaultLimit);
  const listpack = await measure(LISTPACK_VALUE_LIMIT);
  report.info(`Redis MEMORY USAGE per user, hash-max-listpack-value ${defaultLimit} (${byDefault.encoding}): stateful after 1000 events ${byDefault.stateful} B, windowed (L=${windowed.metadata.maxSeqLen}) ${byDefault.windowed} B; embedding read ${byDefault.readUs.toFixed(1)} µs/user, state read + write ${byDefault.writeUs.toFixed(1)} µs/user`);
  report.info(`Redis MEMORY USAGE per user, hash-max-listpack-value ${LISTPACK_VALUE_LIMIT} (${listpack.encoding}): stateful ${listpack.stateful} B, windowed ${listpack.windowed} B; embedding read ${listpack.readUs.toFixed(1)} µs/user, state read + write ${listpack.writeUs.toFixed(1)} µs/user`);
  report.figure({
    id: 'history.redis_bytes_per_user',
    label: `Redis bytes per user (MEMORY USAGE), stateful after 1,000 events vs windowed with its full ${windowed.metadata.maxSeqLen}-event window`,
    unit: 'B',
    value: byDefault.stateful,
    ceiling: byDefault.windowed,
    ceilingLabel: 'windowed (today)',
    lowerIsBetter: true,
    goal: { kind: 'max-ratio', target: 1.0 },
  });
  report.figure({
    id: 'history.redis_bytes_per_user_listpack',
    label: `Redis bytes per user, stateful after 1,000 events with hash-max-listpack-value ${LISTPACK_VALUE_LIMIT} vs windowed with Redis's default encoding (today's layout)`,
    unit: 'B',
    value: listpack.stateful,
    ceiling: byDefault.windowed,
    ceilingLabel: 'windowed (today)',
    lowerIsBetter: true,
    goal: { kind: 'max-ratio', target: 1.0 },
  });
  report.figure({
    id: 'history.embedding_read_listpack',
    label: `serving's embedding read per user (HMGET of 4 fields, 64 users a call), stateful hashes as listpacks vs hashtables`,
    unit: 'µs/user',
    value: listpack.readUs,
    ceiling: byDefault.readUs,
    ceilingLabel: 'hashtable (default)',
    lowerIsBetter: true,
  });
  report.figure({
    id: 'history.state_write_listpack',
    label: `the stream's state read + compare-and-set write per user (64 users a call), stateful hashes as listpacks vs hashtables`,
    unit: 'µs/user',
    value: listpack.writeUs,
    ceiling: byDefault.writeUs,
    ceilingLabel: 'hashtable (default)',
    lowerIsBetter: true,
  });
} finally {
  redis.disconnect();
}
await statefulSession.release();
await windowedSession.release();
report.finish(OUT_DIR);
