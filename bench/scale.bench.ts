// Scale: Redis bytes per user (MEMORY USAGE and used_memory growth) beside the raw bytes stored;
// cost vs sequence length (L = 50 → 200: ORT per-user time, Redis read+write per user, and the
// stream job with a max_seq_len 200 model in --long); cost vs number of users (ingest events/s
// and coalescing with 10k vs 100k simulated users); consumer RSS. Flags super-linear growth.
import { existsSync } from 'node:fs';
import { encodeHighWater, encodeWindow } from '../featurestore/codec.js';
import { FeatureStore } from '../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle, type ModelBundle } from '../model/model-bundle.js';
import { Random } from '../simulator/random.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, stringArg, unique } from './lib/env.js';
import { ortSession, ortUsersPerSecond } from './lib/ort.js';
import { type PipelineRun, runPipeline } from './lib/pipeline.js';
import { Report } from './lib/report.js';
import { benchKafka, benchTopics, createTopics, deleteKeys, deleteTopics, seedUsers } from './lib/services.js';
import { fmt, pairedLoop, quantile, spread } from './lib/stats.js';
import { produceWorldEvents } from './lib/traffic.js';
import { syntheticWindow } from './lib/windows.js';

const args = benchArgs({ 'long-model': { type: 'string' }, 'memory-users': { type: 'string' }, events: { type: 'string' } });
const report = new Report('scale');
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const longModelDir = stringArg(args, 'long-model', process.env.TASTE_BENCH_MODEL_LONG ?? '/tmp/taste-bench-models/seq200');
const longBundle: ModelBundle | undefined = existsSync(`${longModelDir}/model.onnx`) ? await loadModelBundle(longModelDir) : undefined;
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 20_000 });
await waitForRedis(redis);
const threads = 2; // the pool default on this machine is cores / workers; set below from the ingest default
const usedMemory = async () => Number((await redis.info('memory')).match(/used_memory:(\d+)/)?.[1] ?? Number.NaN);

// 1. Bytes per user, at L = 50 and L = 200, for 10k (and 100k with --long) users.
const memoryUsers = args.values['memory-users'] ? [numberArg(args, 'memory-users', 10_000)] : args.long ? [10_000, 100_000] : [10_000];
const bytesPerUser: Record<string, number> = {};
for (const L of [metadata.maxSeqLen, 200]) {
  for (const n of memoryUsers) {
    const prefix = unique('mem');
    const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: prefix });
    const before = await usedMemory();
    const users = Array.from({ length: n }, (_, i) => `user-${i}`);
    await seedUsers(store, users, { ...metadata, maxSeqLen: L }, { length: L });
    const after = await usedMemory();
    const sample = Array.from({ length: 200 }, (_, i) => store.key(users[Math.floor((i * n) / 200)]!));
    const usage = await Promise.all(sample.map((key) => redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') as Promise<number>));
    const memoryUsage = usage.reduce((s, x) => s + Number(x), 0) / usage.length;
    const rng = new Random('raw-size');
    const window = syntheticWindow(rng, L, metadata, Date.UTC(2026, 0, 1));
    const raw =
      encodeWindow(window, metadata.queryTokens).length +
      encodeHighWater(new Map([[`taste.plays.v1:1`, 1_500_000_000], [`taste.searches.v1:1`, 50_000_000]])).length +
      metadata.embeddingDim * 4 + 13 * 3 + 2 + 4 + 4 + // emb, upd/last (13 digits), n, ver, total
      store.key(users[0]!).length;
    const perUser = (after - before) / n;
    bytesPerUser[`L${L}.n${n}`] = perUser;
    report.info(`L=${L}, ${n} users: MEMORY USAGE ${memoryUsage.toFixed(0)} B/user, used_memory growth ${perUser.toFixed(0)} B/user, raw key+values ${raw} B/user`);
    report.figure({
      id: `scale.bytes_per_user.L${L}.n${n}`,
      label: `Redis bytes per user (used_memory growth / users), L=${L}, ${n} users, vs raw key + field values`,
      unit: 'B/user',
      value: perUser,
      ceiling: raw,
      ceilingLabel: 'raw key + values',
      lowerIsBetter: true,
      note: `MEMORY USAGE ${memoryUsage.toFixed(0)} B; 1M users ≈ ${((perUser * 1e6) / 2 ** 30).toFixed(2)} GiB per model version (extrapolated)`,
    });
    await deleteKeys(redis, prefix);
  }
}
if (memoryUsers.length > 1) {
  const [a, b] = memoryUsers;
  const growth = bytesPerUser[`L50.n${b}`]! / bytesPerUser[`L50.n${a}`]!;
  report.info(`bytes/user at ${b} vs ${a} users: ×${growth.toFixed(2)} ${growth > 1.15 ? '(SUPER-LINEAR: check)' : '(linear)'}`);
}

// 2. Cost vs sequence length: ORT per-user time with the L=200 model at T = 50, 100, 200.
const minMs = args.long ? 2000 : 500;
if (longBundle) {
  const session = await ortSession(longBundle, threads);
  try {
    for (const b of args.long ? [32, 256] : [256]) {
      const perUserUs: Record<number, number[]> = {};
      for (let r = 0; r < args.repeats; r++) {
        for (const T of [50, 100, 200]) (perUserUs[T] ??= []).push(1e6 / (await ortUsersPerSecond(session, longBundle, b, T, minMs)));
      }
      const at = (T: number) => spread(perUserUs[T]!);
      const growth = at(200).median / at(50).median;
      report.info(`ORT µs/user (L=200 model, batch ${b}): T=50 ${at(50).median.toFixed(0)}, T=100 ${at(100).median.toFixed(0)}, T=200 ${at(200).median.toFixed(0)} → ×${growth.toFixed(2)} for ×4 length ${growth > 4.4 ? '(SUPER-LINEAR)' : '(≤ linear)'}`);
      report.figure({
        id: `scale.ort_T200_vs_T50.b${b}`,
        label: `ORT cost per user at T=200 vs T=50 (model with max_seq_len 200, batch ${b}); linear would be 4`,
        unit: 'µs/user',
        value: at(200).median,
        spread: at(200),
        ceiling: at(50).median,
        ceilingSpread: at(50),
        ceilingLabel: 'T=50',
        lowerIsBetter: true,
        goal: { kind: 'max-ratio', target: 4.4 },
        note: 'goal: no worse than linear in T (+10% noise margin)',
      });
    }
  } finally {
    await session.release();
  }
} else {
  report.info(`no max_seq_len 200 model at ${longModelDir}: skipping the sequence-length figures (bench/run.sh makes one with the training venv)`);
}

// Redis read + write per user at L = 50 vs 200.
{
  const perUser: Record<number, number[]> = {};
  const B = 256;
  const stores: Record<number, { store: FeatureStore; prefix: string; users: string[]; updates: Parameters<FeatureStore['writeStates']>[0] }> = {};
  for (const L of [50, 200]) {
    const prefix = unique('rwL');
    const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: prefix });
    const users = Array.from({ length: B }, (_, i) => `user-${i}`);
    const rng = new Random(`L${L}`);
    const updates = users.map((userId) => ({
      userId,
      expectedVersion: 0,
      window: syntheticWindow(rng, L, metadata, Date.UTC(2026, 0, 1)),
      highWater: new Map([[`taste.plays.v1:1`, 1_500_000_000]]),
      embedding: new Float32Array(metadata.embeddingDim),
      updatedMs: Date.now(),
      appliedTotal: L,
    }));
    stores[L] = { store, prefix, users, updates };
  }
  for (let r = 0; r < args.repeats; r++) {
    const times = await pairedLoop(
      [50, 200].map((L) => async () => {
        const { store, users, updates } = stores[L]!;
        const states = await store.loadStates(users);
        for (const u of updates) u.expectedVersion = states.get(u.userId)!.version;
        await store.writeStates(updates);
      }),
      { minMs, blockMs: minMs / 4, minRounds: 2 },
    );
    [50, 200].forEach((L, i) => (perUser[L] ??= []).push((quantile(times[i]!, 0.5) * 1000) / B));
  }
  const s50 = spread(perUser[50]!);
  const s200 = spread(perUser[200]!);
  report.info(`Redis loadStates + writeStates µs/user: L=50 ${s50.median.toFixed(1)}, L=200 ${s200.median.toFixed(1)} (×${(s200.median / s50.median).toFixed(2)})`);
  report.figure({
    id: 'scale.redis_rw_L200_vs_L50',
    label: 'FeatureStore loadStates + writeStates per user, L=200 vs L=50 (256 users per call); linear would be 4',
    unit: 'µs/user',
    value: s200.median,
    spread: s200,
    ceiling: s50.median,
    ceilingSpread: s50,
    ceilingLabel: 'L=50',
    lowerIsBetter: true,
    goal: { kind: 'max-ratio', target: 4.4 },
  });
  for (const L of [50, 200]) await deleteKeys(redis, stores[L]!.prefix);
}

// 3. Cost vs users: the stream job on the same number of events from 10k vs 100k users.
const N = numberArg(args, 'events', args.long ? 50_000 : 8_000);
const kafka = benchKafka();
const byUsers: Record<string, PipelineRun> = {};
const variants: { key: string; users: number; bundle: ModelBundle }[] = [
  { key: 'U10k', users: 10_000, bundle },
  { key: 'U100k', users: 100_000, bundle },
  ...(args.long && longBundle ? [{ key: 'U10k.L200', users: 10_000, bundle: longBundle }] : []),
  ...(args.long ? [{ key: 'U1M', users: 1_000_000, bundle }] : []),
];
for (const v of variants) {
  const topics = benchTopics();
  try {
    await createTopics(kafka, topics, 4);
    const traffic = await produceWorldEvents(kafka, topics, { users: v.users, count: N });
    const run = await runPipeline({ bundle: v.bundle, redis, topics, expected: traffic.sent, seedUserIds: [...traffic.eventsByUser.keys()], overrides: { modelDir: v.bundle.directory } });
    byUsers[v.key] = run;
    report.info(
      `${v.key}: ${traffic.eventsByUser.size} users touched by ${traffic.sent} events; stream job ${fmt(run.eventsPerS)} events/s, ${run.usersPerStep.toFixed(0)} users/step, ` +
        `${run.eventsPerUserStep.toFixed(2)} events/user/step, RSS peak ${run.rssPeakMb.toFixed(0)} MB (before ${run.rssBeforeMb.toFixed(0)} MB)`,
    );
  } finally {
    await deleteTopics(kafka, topics);
  }
}
const base = byUsers.U10k!;
for (const key of Object.keys(byUsers).filter((k) => k !== 'U10k')) {
  const run = byUsers[key]!;
  report.figure({
    id: `scale.ingest.${key}_vs_U10k`,
    label: `stream job events/s, ${key} vs 10k users (same number of events; coalescing ${run.eventsPerUserStep.toFixed(2)} vs ${base.eventsPerUserStep.toFixed(2)} events/user/step)`,
    unit: 'events/s',
    value: run.eventsPerS,
    ceiling: base.eventsPerS,
    ceilingLabel: '10k users',
    note: `users/s ${fmt(run.eventsPerS / run.eventsPerUserStep)} vs ${fmt(base.eventsPerS / base.eventsPerUserStep)}; RSS peak ${run.rssPeakMb.toFixed(0)} vs ${base.rssPeakMb.toFixed(0)} MB`,
  });
  report.figure({
    id: `scale.rss.${key}_vs_U10k`,
    label: `process RSS peak during the stream job, ${key} vs 10k users`,
    unit: 'MB',
    value: run.rssPeakMb,
    ceiling: base.rssPeakMb,
    ceilingLabel: '10k users',
    lowerIsBetter: true,
  });
}
report.context('bytesPerUser', bytesPerUser);
report.context('runs', Object.fromEntries(Object.entries(byUsers).map(([k, { steps, ...rest }]) => [k, { ...rest, steps: steps.length }])));
redis.disconnect();
report.finish(OUT_DIR);
