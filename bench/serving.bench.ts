// Serving: GetUserEmbedding (concurrency 1/16/64) and BatchGetUserEmbeddings of 100 users through
// the real `taste serve` process, beside raw ioredis HMGETs of the same keys and fields at the same
// concurrency from the same load generator; then p50/p99 at half the max load (open loop), and
// redis-benchmark for context.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { FeatureStore } from '../featurestore/feature-store.js';
import { StateFields } from '../featurestore/keys.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { batchGetUserEmbeddings, createEmbeddingClient, getUserEmbedding } from '../serving/client.js';
import { encodeBatchGetUserEmbeddingsResponse, type ServedEmbedding } from '../serving/response-encoding.js';
import { loadServicePackage } from '../serving/service-definition.js';
import { Random } from '../simulator/random.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, REPO_ROOT, unique } from './lib/env.js';
import { machineLoad, withCpu } from './lib/cpu.js';
import { closedLoop, type LoadResult, openLoop } from './lib/load.js';
import { Report } from './lib/report.js';
import { deleteKeys, freePort, seedUsers } from './lib/services.js';
import { fmt, pairedLoop, quantile, sleep, spread, summarize } from './lib/stats.js';

const args = benchArgs({ users: { type: 'string' }, seconds: { type: 'string' } });
const report = new Report('serving');
const K = numberArg(args, 'users', 10_000);
const seconds = numberArg(args, 'seconds', args.long ? 5 : 1);
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
await waitForRedis(redis);
const prefix = unique('serve');
const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: prefix });
const userIds = Array.from({ length: K }, (_, i) => `user-${i}`);
await seedUsers(store, userIds, metadata);
const rng = new Random('serving');
const pick = () => userIds[rng.int(K)]!;
const fields = [StateFields.embedding, StateFields.updatedMs, StateFields.lastEventMs, StateFields.eventsInWindow];

// Response encoding alone, on 100 of the seeded embeddings: the direct encoder `taste serve` uses
// beside the generic proto-loader path it replaced (plain-array copy of each vector + fromObject + encode).
{
  const stored = await store.readEmbeddings(userIds.slice(0, 100));
  const served = stored.map((embedding, i): ServedEmbedding => ({
    userId: userIds[i]!,
    modelVersion: metadata.modelVersion,
    vector: embedding!.vector,
    updatedTimeMs: embedding!.updatedMs,
    lastEventTimeMs: embedding!.lastEventMs,
    eventsInWindow: embedding!.eventsInWindow,
  }));
  const genericSerialize = (loadServicePackage()['taste.v1.EmbeddingService'] as unknown as Record<string, { responseSerialize: (value: unknown) => Buffer }>)[
    'BatchGetUserEmbeddings'
  ]!.responseSerialize;
  const direct = () => encodeBatchGetUserEmbeddingsResponse({ results: served.map((embedding) => ({ userId: embedding.userId, embedding })), modelVersion: metadata.modelVersion });
  const generic = () =>
    genericSerialize({
      results: served.map((embedding) => ({ userId: embedding.userId, embedding: { ...embedding, vector: Array.from(embedding.vector), dimension: embedding.vector.length } })),
      modelVersion: metadata.modelVersion,
    });
  if (!direct().equals(generic())) throw new Error('the direct and generic encoders disagree');
  const directUs: number[] = [];
  const genericUs: number[] = [];
  for (let r = 0; r < args.repeats; r++) {
    const [d, g] = await pairedLoop([direct, generic], { minMs: 500, blockMs: 20, minRounds: 5 });
    directUs.push(quantile(d!, 0.5) * 1000);
    genericUs.push(quantile(g!, 0.5) * 1000);
  }
  const ds = spread(directUs);
  const gs = spread(genericUs);
  report.figure({
    id: 'serving.encode.batch100',
    label: `BatchGetUserEmbeddings response encoding, 100 users × ${metadata.embeddingDim} floats: direct encoder vs the generic proto-loader path (same bytes)`,
    unit: 'µs/response',
    value: ds.median,
    spread: ds,
    ceiling: gs.median,
    ceilingSpread: gs,
    ceilingLabel: 'generic (Array.from + fromObject + encode)',
    lowerIsBetter: true,
  });
}

const port = await freePort();
const child = spawn(
  process.execPath,
  [`${REPO_ROOT}dist/cli/main.js`, 'serve', '--host', '127.0.0.1', '--port', String(port), '--redis-url', REDIS_URL, '--key-prefix', prefix, '--model', MODEL_DIR, '--log-level', 'warn'],
  { stdio: ['ignore', 'inherit', 'inherit'] },
);
const client = createEmbeddingClient(`127.0.0.1:${port}`);
type Measured = LoadResult & { clientCpuMsPerCall: number; serverCpuMsPerCall: number; redisCpuMsPerCall: number };
const results: Record<string, Measured[]> = {};
const redisPid = Number((await redis.info('server')).match(/process_id:(\d+)/)?.[1] ?? 0);
/** A load run with the CPU each side spent per call: this process (load generator), the server, Redis. */
async function measured(fn: () => Promise<LoadResult>): Promise<Measured> {
  const { result, selfMs, pidMs } = await withCpu([child.pid ?? 0, redisPid], fn);
  const per = (ms: number) => ms / Math.max(1, result.calls);
  return { ...result, clientCpuMsPerCall: per(selfMs), serverCpuMsPerCall: per(pidMs[0]!), redisCpuMsPerCall: per(pidMs[1]!) };
}
const keep = (key: string, result: Measured) => (results[key] ??= []).push(result);

try {
  for (let attempt = 0; ; attempt++) {
    try {
      await getUserEmbedding(client, { userId: userIds[0]! }, 1000);
      break;
    } catch (error) {
      if (attempt > 100) throw new Error(`taste serve did not answer on port ${port}: ${(error as Error).message}`);
      await sleep(100);
    }
  }
  report.info(`taste serve (child process) on 127.0.0.1:${port}, ${K} users seeded; ${args.repeats} repeats of ${seconds} s per point`);
  const grpcSingle = () => getUserEmbedding(client, { userId: pick() }, 5000);
  const rawSingle = () => redis.hmgetBuffer(store.key(pick()), ...fields);
  const grpcBatch = () => batchGetUserEmbeddings(client, { userIds: Array.from({ length: 100 }, pick) }, 5000);
  const rawBatch = () => Promise.all(Array.from({ length: 100 }, () => redis.hmgetBuffer(store.key(pick()), ...fields)));
  for (let i = 0; i < 200; i++) await Promise.all([grpcSingle(), rawSingle()]); // warm-up (JIT, connections)

  for (let r = 0; r < args.repeats; r++) {
    for (const c of [1, 16, 64]) {
      keep(`grpc.single.c${c}`, await measured(() => closedLoop(grpcSingle, c, seconds * 1000)));
      keep(`raw.single.c${c}`, await measured(() => closedLoop(rawSingle, c, seconds * 1000)));
    }
    for (const c of [1, 16]) {
      keep(`grpc.batch.c${c}`, await measured(() => closedLoop(grpcBatch, c, seconds * 1000)));
      keep(`raw.batch.c${c}`, await measured(() => closedLoop(rawBatch, c, seconds * 1000)));
    }
  }
  const qps = (key: string) => spread(results[key]!.map((x) => x.qps));
  const lat = (key: string) => summarize(results[key]!.flatMap((x) => x.latenciesMs));
  for (const [kind, cs] of [['single', [1, 16, 64]], ['batch', [1, 16]]] as const) {
    for (const c of cs) {
      const g = qps(`grpc.${kind}.c${c}`);
      const w = qps(`raw.${kind}.c${c}`);
      const gl = lat(`grpc.${kind}.c${c}`);
      const wl = lat(`raw.${kind}.c${c}`);
      const errors = results[`grpc.${kind}.c${c}`]!.reduce((s, x) => s + x.errors, 0);
      const cpu = (key: string) => {
        const runs = results[key]!;
        const avg = (f: (m: Measured) => number) => runs.reduce((s, m) => s + f(m), 0) / runs.length;
        return `CPU/call: load generator ${(1000 * avg((m) => m.clientCpuMsPerCall)).toFixed(0)} µs, server ${(1000 * avg((m) => m.serverCpuMsPerCall)).toFixed(0)} µs, redis ${(1000 * avg((m) => m.redisCpuMsPerCall)).toFixed(0)} µs`;
      };
      report.info(
        `${kind === 'single' ? 'GetUserEmbedding' : 'BatchGet(100)'} c=${c}: gRPC ${fmt(g.median)} calls/s p50 ${gl.p50.toFixed(2)} p99 ${gl.p99.toFixed(2)} ms; ` +
          `raw HMGET ${fmt(w.median)} calls/s p50 ${wl.p50.toFixed(2)} p99 ${wl.p99.toFixed(2)} ms${errors ? `; ${errors} gRPC errors` : ''}`,
      );
      report.info(`  gRPC ${cpu(`grpc.${kind}.c${c}`)}; raw ${cpu(`raw.${kind}.c${c}`)}`);
      const avgCpu = (key: string, f: (m: Measured) => number) => results[key]!.reduce((s, m) => s + f(m), 0) / results[key]!.length;
      const serverUs = 1000 * avgCpu(`grpc.${kind}.c${c}`, (m) => m.serverCpuMsPerCall);
      const rawClientUs = 1000 * avgCpu(`raw.${kind}.c${c}`, (m) => m.clientCpuMsPerCall);
      if (kind === 'single' ? c === 64 : c === 16) {
        report.figure({
          id: `serving.${kind}.server_cpu_per_call.c${c}`,
          label: `taste serve CPU per ${kind === 'single' ? 'GetUserEmbedding' : 'BatchGet(100)'} call (c=${c}) vs the ioredis client CPU for the same raw HMGET${kind === 'batch' ? 's' : ''}: what a server could not avoid (noise-robust capacity figure)`,
          unit: 'µs CPU/call',
          value: serverUs,
          ceiling: rawClientUs,
          ceilingLabel: 'raw ioredis client CPU/call',
          lowerIsBetter: true,
          note: `≈ ${fmt(1e6 / serverUs)} calls/s per fully free core`,
        });
      }
      report.context(`latency.grpc.${kind}.c${c}`, gl);
      report.context(`latency.raw.${kind}.c${c}`, wl);
      report.figure({
        id: `serving.${kind}.c${c}`,
        label: `${kind === 'single' ? 'GetUserEmbedding' : 'BatchGetUserEmbeddings(100 users)'} calls/s at concurrency ${c} vs raw ioredis HMGET${kind === 'batch' ? ' ×100' : ''}`,
        unit: 'calls/s',
        value: g.median,
        spread: g,
        ceiling: w.median,
        ceilingSpread: w,
        ceilingLabel: 'raw ioredis',
        goal: { kind: 'min-ratio', target: 0.5 },
        note: `p50/p99 gRPC ${gl.p50.toFixed(2)}/${gl.p99.toFixed(2)} ms, raw ${wl.p50.toFixed(2)}/${wl.p99.toFixed(2)} ms`,
      });
    }
  }

  // Latency at half the max load, open loop, gRPC and raw at the same rate.
  const halfSingle = Math.max(10, Math.round(0.5 * qps('grpc.single.c64').median));
  const halfBatch = Math.max(2, Math.round(0.5 * qps('grpc.batch.c16').median));
  const openSeconds = args.long ? 10 : 2;
  // Latency against load, GetUserEmbedding: open loop at fractions of the max closed-loop rate
  // (bench/figures/serving-latency.png); the half-load point is also the figure below.
  const maxSingle = qps('grpc.single.c64').median;
  const sweep: { fraction: number; rate: number; grpc: Measured; raw: Measured }[] = [];
  for (const fraction of [0.1, 0.25, 0.5, 0.75, 0.9]) {
    const rate = fraction === 0.5 ? halfSingle : Math.max(10, Math.round(fraction * maxSingle));
    const grpc = await measured(() => openLoop(grpcSingle, rate, openSeconds * 1000));
    const raw = await measured(() => openLoop(rawSingle, rate, openSeconds * 1000));
    sweep.push({ fraction, rate, grpc, raw });
  }
  const sweepLine = (label: string, pick: (point: (typeof sweep)[number]) => Measured, q: 'p50' | 'p99') => ({
    label,
    x: sweep.map((point) => point.rate),
    y: sweep.map((point) => summarize(pick(point).latenciesMs)[q]),
  });
  report.plot({
    id: 'serving-latency',
    kind: 'lines',
    title: 'GetUserEmbedding latency against load (open loop)',
    caption: `${sweep.map((point) => point.fraction).join(', ')} × the max closed-loop rate (${fmt(maxSingle)} calls/s at concurrency 64), ${openSeconds} s per point; raw ioredis HMGET at the same rates`,
    xLabel: 'offered load, calls per second',
    yLabel: 'latency, ms',
    yLog: true,
    lines: [
      sweepLine('gRPC p99', (point) => point.grpc, 'p99'),
      sweepLine('gRPC p50', (point) => point.grpc, 'p50'),
      sweepLine('raw HMGET p99', (point) => point.raw, 'p99'),
      sweepLine('raw HMGET p50', (point) => point.raw, 'p50'),
    ],
  });
  report.context('latencyAgainstLoad', sweep.map(({ fraction, rate, grpc, raw }) => ({ fraction, rate, grpc: summarize(grpc.latenciesMs), raw: summarize(raw.latenciesMs), grpcErrors: grpc.errors, grpcSkipped: grpc.skipped })));
  const half = sweep.find((point) => point.fraction === 0.5)!;
  for (const [kind, rate, grpcCall, rawCall, goal] of [
    ['single', halfSingle, grpcSingle, rawSingle, 5],
    ['batch', halfBatch, grpcBatch, rawBatch, 10],
  ] as const) {
    const g = kind === 'single' ? half.grpc : await measured(() => openLoop(grpcCall, rate, openSeconds * 1000));
    const w = kind === 'single' ? half.raw : await measured(() => openLoop(rawCall, rate, openSeconds * 1000));
    const gs = summarize(g.latenciesMs);
    const ws = summarize(w.latenciesMs);
    report.info(
      `${kind === 'single' ? 'GetUserEmbedding' : 'BatchGet(100)'} open loop at ${rate}/s (half the max): gRPC p50 ${gs.p50.toFixed(2)} p99 ${gs.p99.toFixed(2)} max ${gs.max.toFixed(1)} ms ` +
        `(${g.errors} errors, ${g.skipped} skipped; CPU/call client ${(1000 * g.clientCpuMsPerCall).toFixed(0)} µs, server ${(1000 * g.serverCpuMsPerCall).toFixed(0)} µs); raw p50 ${ws.p50.toFixed(2)} p99 ${ws.p99.toFixed(2)} ms; load ${machineLoad()}`,
    );
    report.figure({
      id: `serving.${kind}.p99_half_load`,
      label: `${kind === 'single' ? 'GetUserEmbedding' : 'BatchGetUserEmbeddings(100)'} p99 at half the max load (${rate} calls/s, open loop) vs raw HMGET p99 at the same rate`,
      unit: 'ms',
      value: gs.p99,
      ceiling: ws.p99,
      ceilingLabel: 'raw ioredis p99',
      lowerIsBetter: true,
      goal: { kind: 'max-value', target: goal },
      note: `p50 ${gs.p50.toFixed(2)} ms`,
    });
  }

  // redis-benchmark for context: the same HMGET from C, and plain GET.
  try {
    const run = promisify(execFile);
    const { hostname, port: redisPort } = new URL(REDIS_URL);
    for (const c of [1, 16, 64]) {
      const { stdout } = await run('redis-benchmark', ['-h', hostname, '-p', redisPort || '6379', '-c', String(c), '-n', String(c === 1 ? 20_000 : 100_000), '--csv', 'HMGET', store.key(userIds[0]!), ...fields]);
      const line = stdout.trim().split('\n').pop()!;
      const cells = line.split(',').map((cell) => Number(cell.replaceAll('"', '')));
      const rps = cells[1]!;
      const raw = qps(`raw.single.c${c}`);
      report.info(`redis-benchmark HMGET c=${c}: ${fmt(rps)} requests/s, p50 ${cells[4]} p99 ${cells[6]} ms`);
      report.figure({
        id: `serving.raw_ioredis_vs_redis_benchmark.c${c}`,
        label: `raw ioredis HMGET from Node vs redis-benchmark HMGET (C client), concurrency ${c} (context)`,
        unit: 'calls/s',
        value: raw.median,
        spread: raw,
        ceiling: rps,
        ceilingLabel: 'redis-benchmark',
      });
    }
  } catch (error) {
    report.info(`redis-benchmark not run: ${(error as Error).message}`);
  }
} finally {
  client.close();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await deleteKeys(redis, prefix);
  redis.disconnect();
}
report.finish(OUT_DIR);
