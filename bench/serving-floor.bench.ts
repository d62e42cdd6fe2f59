// Serving against the framework's floor (issue 18, part 4): `taste serve` beside a no-op grpc-js
// server (bench/noop-server-child.ts) that answers the same RPCs with the same response bytes,
// precomputed, from the same load generator in the same run.
// - Server CPU per call, GetUserEmbedding and BatchGetUserEmbeddings(100), closed loop at
//   concurrency 16: the figure that does not depend on how much of the 2 cores the load generator
//   takes. Goals: calls per server CPU-second ≥ 0.85 × the floor's (single), ≥ 0.5 × (batch).
// - calls/s at concurrency 16, for context (the load generator shares the machine).
// - p99 at half load: open loop at half `taste serve`'s max rate, both servers at the same rate.
//   Goal: ≤ 1.5 × the floor's.
// - Idle CPU (ms of CPU per second, nothing calling) of `taste serve` and `taste consume` with
//   metrics off, beside the floor server. Goal: ≤ the floor's.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { FeatureStore } from '../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { batchGetUserEmbeddings, createEmbeddingClient, getUserEmbedding } from '../serving/client.js';
import { EMBEDDING_SERVICE_NAME, loadServicePackage } from '../serving/service-definition.js';
import { Random } from '../simulator/random.js';
import { benchArgs, KAFKA_BROKERS, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, REPO_ROOT, unique } from './lib/env.js';
import { machineLoad, processCpuMs, withCpu } from './lib/cpu.js';
import { closedLoop, type LoadResult, openLoop } from './lib/load.js';
import { Report } from './lib/report.js';
import { deleteKeys, freePort, seedUsers } from './lib/services.js';
import { fmt, sleep, spread, summarize } from './lib/stats.js';

const args = benchArgs({ users: { type: 'string' }, seconds: { type: 'string' }, 'idle-seconds': { type: 'string' }, concurrency: { type: 'string' }, 'server-profile-dir': { type: 'string' } });
/** `--server-profile-dir D`: taste serve runs with --cpu-prof into D (a profile per run, for the note's breakdown). */
const serverProfileDir = args.values['server-profile-dir'] as string | undefined;
const report = new Report('serving-floor');
const K = numberArg(args, 'users', 100_000);
const seconds = numberArg(args, 'seconds', args.long ? 5 : 2);
const idleSeconds = numberArg(args, 'idle-seconds', args.long ? 30 : 15);
const concurrency = numberArg(args, 'concurrency', 16);
const BATCH = 100;

const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 30_000 });
await waitForRedis(redis);
const prefix = unique('floor');
const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: prefix });
const userIds = Array.from({ length: K }, (_, i) => `user-${i}`);
const seedStart = performance.now();
await seedUsers(store, userIds, metadata);
report.info(`${K} users seeded under ${prefix} in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
const rng = new Random('serving-floor');
const pick = () => userIds[rng.int(K)]!;

const scratch = mkdtempSync(join(tmpdir(), 'taste-floor-'));
const children: ChildProcess[] = [];
/** Spawns a node child and waits for its first stdout line matching `ready` (or for a gRPC answer). */
function spawnChild(script: string, childArgs: string[], name: string, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, `${REPO_ROOT}dist/${script}`, ...childArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') report.info(`${name} exited early (code ${code}, signal ${signal})`);
  });
  createInterface({ input: child.stdout! }).on('line', () => undefined);
  return child;
}
async function waitForAnswer(client: ReturnType<typeof createEmbeddingClient>, name: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await getUserEmbedding(client, { userId: userIds[0]! }, 1000);
      return;
    } catch (error) {
      if (attempt > 150) throw new Error(`${name} did not answer: ${(error as Error).message}`);
      await sleep(100);
    }
  }
}

/** One unary call's response bytes, undecoded: what the floor server will send back. */
function rawResponse(address: string, method: string, request: unknown): Promise<Buffer> {
  const definition = (loadServicePackage()[EMBEDDING_SERVICE_NAME] as unknown as Record<string, { requestSerialize: (value: unknown) => Buffer }>)[method]!;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(`/${EMBEDDING_SERVICE_NAME}/${method}`, definition.requestSerialize, (bytes: Buffer) => bytes, request, (error, bytes) => {
      client.close();
      if (error || !bytes) reject(error ?? new Error(`${method}: no response`));
      else resolve(bytes);
    });
  });
}

try {
  const tastePort = await freePort();
  const taste = spawnChild(
    'cli/main.js',
    ['serve', '--host', '127.0.0.1', '--port', String(tastePort), '--redis-url', REDIS_URL, '--key-prefix', prefix, '--model', MODEL_DIR, '--metrics-port', '0', '--log-level', 'warn'],
    'taste serve',
    serverProfileDir ? ['--cpu-prof', '--cpu-prof-dir', serverProfileDir] : [],
  );
  const tasteClient = createEmbeddingClient(`127.0.0.1:${tastePort}`);
  await waitForAnswer(tasteClient, 'taste serve');

  // The floor answers with the bytes taste serve gives for one user and for one batch of 100.
  const singleBytes = await rawResponse(`127.0.0.1:${tastePort}`, 'GetUserEmbedding', { userId: userIds[1] });
  const batchBytes = await rawResponse(`127.0.0.1:${tastePort}`, 'BatchGetUserEmbeddings', { userIds: userIds.slice(0, BATCH) });
  writeFileSync(join(scratch, 'single.bin'), singleBytes);
  writeFileSync(join(scratch, 'batch.bin'), batchBytes);
  const floorPort = await freePort();
  const floor = spawnChild('bench/noop-server-child.js', ['--port', String(floorPort), '--single', join(scratch, 'single.bin'), '--batch', join(scratch, 'batch.bin')], 'floor server');
  const floorClient = createEmbeddingClient(`127.0.0.1:${floorPort}`);
  await waitForAnswer(floorClient, 'the floor server');
  report.info(`taste serve on :${tastePort}, floor on :${floorPort}; responses ${singleBytes.length} B (single), ${batchBytes.length} B (batch of ${BATCH})`);

  const servers = {
    taste: { pid: taste.pid!, client: tasteClient },
    floor: { pid: floor.pid!, client: floorClient },
  } as const;
  type Server = keyof typeof servers;
  const call = {
    single: (server: Server) => () => getUserEmbedding(servers[server].client, { userId: pick() }, 5000),
    batch: (server: Server) => () => batchGetUserEmbeddings(servers[server].client, { userIds: Array.from({ length: BATCH }, pick) }, 5000),
  };
  type Kind = keyof typeof call;
  type Measured = LoadResult & { serverCpuMsPerCall: number; clientCpuMsPerCall: number };
  async function measured(server: Server, fn: () => Promise<LoadResult>): Promise<Measured> {
    const { result, selfMs, pidMs } = await withCpu([servers[server].pid], fn);
    const per = (ms: number) => ms / Math.max(1, result.calls);
    return { ...result, serverCpuMsPerCall: per(pidMs[0]!), clientCpuMsPerCall: per(selfMs) };
  }
  for (const server of ['taste', 'floor'] as const) {
    for (let i = 0; i < 300; i++) await Promise.all([call.single(server)(), call.batch(server)()]); // JIT, connections
  }

  // Closed loop, alternating the two servers within each repeat so drifts in the machine's load hit both.
  const runs: Record<`${Server}.${Kind}`, Measured[]> = { 'taste.single': [], 'floor.single': [], 'taste.batch': [], 'floor.batch': [] };
  for (let r = 0; r < args.repeats; r++) {
    for (const kind of ['single', 'batch'] as const) {
      const order: Server[] = r % 2 === 0 ? ['taste', 'floor'] : ['floor', 'taste'];
      for (const server of order) runs[`${server}.${kind}`].push(await measured(server, () => closedLoop(call[kind](server), concurrency, seconds * 1000)));
    }
  }
  const errorsOf = (key: keyof typeof runs) => runs[key].reduce((sum, run) => sum + run.errors, 0);
  for (const kind of ['single', 'batch'] as const) {
    const rpc = kind === 'single' ? 'GetUserEmbedding' : `BatchGetUserEmbeddings(${BATCH})`;
    const callsPerCpuS = (key: keyof typeof runs) => spread(runs[key].map((run) => 1000 / run.serverCpuMsPerCall));
    const qps = (key: keyof typeof runs) => spread(runs[key].map((run) => run.qps));
    const tasteCpu = callsPerCpuS(`taste.${kind}`);
    const floorCpu = callsPerCpuS(`floor.${kind}`);
    const tasteUs = 1e6 / tasteCpu.median;
    const floorUs = 1e6 / floorCpu.median;
    const errors = errorsOf(`taste.${kind}`) + errorsOf(`floor.${kind}`);
    report.info(
      `${rpc} c=${concurrency}: taste ${fmt(qps(`taste.${kind}`).median)} calls/s, ${tasteUs.toFixed(0)} µs server CPU/call; ` +
        `floor ${fmt(qps(`floor.${kind}`).median)} calls/s, ${floorUs.toFixed(0)} µs/call${errors ? `; ${errors} errors` : ''}; load ${machineLoad()}`,
    );
    report.figure({
      id: `serving_floor.${kind}.calls_per_server_cpu_s`,
      label: `${rpc}: calls per second of taste serve's CPU vs the no-op floor server's, closed loop at concurrency ${concurrency}`,
      unit: 'calls/CPU-s',
      value: tasteCpu.median,
      spread: tasteCpu,
      ceiling: floorCpu.median,
      ceilingSpread: floorCpu,
      ceilingLabel: 'no-op grpc-js floor',
      goal: { kind: 'min-ratio', target: kind === 'single' ? 0.85 : 0.5 },
      note: `server CPU per call ${tasteUs.toFixed(0)} vs ${floorUs.toFixed(0)} µs`,
    });
    const tasteQps = qps(`taste.${kind}`);
    const floorQps = qps(`floor.${kind}`);
    report.figure({
      id: `serving_floor.${kind}.calls_per_s`,
      label: `${rpc}: calls/s at concurrency ${concurrency} vs the floor server (context: the load generator shares the 2 cores)`,
      unit: 'calls/s',
      value: tasteQps.median,
      spread: tasteQps,
      ceiling: floorQps.median,
      ceilingSpread: floorQps,
      ceilingLabel: 'no-op grpc-js floor',
    });
  }

  // p99 at half load: both servers at the same rate, half of taste serve's closed-loop max.
  const openSeconds = args.long ? 10 : 4;
  for (const kind of ['single', 'batch'] as const) {
    const rate = Math.max(5, Math.round(0.5 * spread(runs[`taste.${kind}`].map((run) => run.qps)).median));
    const tasteOpen = await measured('taste', () => openLoop(call[kind]('taste'), rate, openSeconds * 1000));
    const floorOpen = await measured('floor', () => openLoop(call[kind]('floor'), rate, openSeconds * 1000));
    const t = summarize(tasteOpen.latenciesMs);
    const f = summarize(floorOpen.latenciesMs);
    const rpc = kind === 'single' ? 'GetUserEmbedding' : `BatchGetUserEmbeddings(${BATCH})`;
    report.context(`halfLoad.${kind}`, { rate, taste: t, floor: f, tasteErrors: tasteOpen.errors, floorErrors: floorOpen.errors });
    report.figure({
      id: `serving_floor.${kind}.p99_half_load`,
      label: `${rpc} p99 at half taste serve's max load (${rate} calls/s, open loop), the floor server at the same rate`,
      unit: 'ms',
      value: t.p99,
      ceiling: f.p99,
      ceilingLabel: 'no-op floor p99',
      lowerIsBetter: true,
      goal: { kind: 'max-ratio', target: 1.5 },
      note: `p50 ${t.p50.toFixed(2)} vs ${f.p50.toFixed(2)} ms`,
    });
  }

  // Idle: nothing calls; CPU per second of each process, with metrics off (`--metrics-port 0`).
  const consumeGroup = unique('floor-idle');
  const consume = spawnChild(
    'cli/main.js',
    [
      'consume',
      '--brokers',
      KAFKA_BROKERS.join(','),
      '--redis-url',
      REDIS_URL,
      '--key-prefix',
      prefix,
      '--model',
      MODEL_DIR,
      '--group-id',
      consumeGroup,
      '--plays-topic',
      `${consumeGroup}.plays`,
      '--searches-topic',
      `${consumeGroup}.searches`,
      '--erasures-topic',
      `${consumeGroup}.erasures`,
      '--dead-letter-topic',
      `${consumeGroup}.dead-letter`,
      '--topic-partitions',
      '1',
      '--metrics-port',
      '0',
      '--log-level',
      'warn',
    ],
    'taste consume',
  );
  await sleep(12_000); // start-up: model load, topic creation, group join
  const idlePids = { 'taste serve': taste.pid!, 'taste consume': consume.pid!, 'no-op floor server': floor.pid! };
  const before = Object.fromEntries(Object.entries(idlePids).map(([name, pid]) => [name, processCpuMs(pid)]));
  const idleStart = performance.now();
  await sleep(idleSeconds * 1000);
  const idleMs = performance.now() - idleStart;
  const perS = Object.fromEntries(Object.entries(idlePids).map(([name, pid]) => [name, ((processCpuMs(pid) - before[name]!) * 1000) / idleMs]));
  report.info(`idle over ${idleSeconds} s (10 ms ticks, so ±${(1000 / idleSeconds / 100).toFixed(1)} ms/s): ${Object.entries(perS).map(([name, v]) => `${name} ${v.toFixed(1)} ms/s`).join(', ')}`);
  report.context('idleCpuMsPerS', perS);
  const floorIdle = Math.max(perS['no-op floor server']!, 1000 / idleSeconds / 100);
  for (const name of ['taste serve', 'taste consume'] as const) {
    report.figure({
      id: `serving_floor.idle.${name.replace('taste ', '')}`,
      label: `${name} idle CPU, metrics off, vs the idle no-op floor server (the floor counted as at least one 10 ms tick over the window)`,
      unit: 'ms CPU/s',
      value: perS[name]!,
      ceiling: floorIdle,
      ceilingLabel: 'no-op floor idle',
      lowerIsBetter: true,
      goal: { kind: 'max-ratio', target: 1 },
    });
  }
  tasteClient.close();
  floorClient.close();
} finally {
  for (const child of children) child.kill('SIGTERM');
  // A child that has exited (by its own hand or by a signal) will not emit 'exit' again.
  await Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined)));
  rmSync(scratch, { recursive: true, force: true });
  await deleteKeys(redis, prefix);
  redis.disconnect();
}
report.finish(OUT_DIR);
