// Where the time goes: `node --cpu-prof` on (1) the real stream job consuming pre-produced
// simulated traffic (main thread + inference worker thread), (2) `taste serve` under
// GetUserEmbedding load. Self time by category (kafkajs, protobuf decode, validation, Redis,
// codecs, tensor building, worker messaging, ORT run, GC) and the top functions.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FeatureStore } from '../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { createEmbeddingClient, getUserEmbedding } from '../serving/client.js';
import { Random } from '../simulator/random.js';
import { formatProfile, type ProfileSummary, summarizeProfile } from './lib/cpuprofile.js';
import { benchArgs, KAFKA_BROKERS, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, REPO_ROOT, unique } from './lib/env.js';
import { closedLoop } from './lib/load.js';
import { Report } from './lib/report.js';
import { benchKafka, benchTopics, createTopics, deleteKeys, deleteTopics, seedUsers } from './lib/services.js';
import { fmt, sleep } from './lib/stats.js';
import { produceWorldEvents } from './lib/traffic.js';

const args = benchArgs({ events: { type: 'string' }, users: { type: 'string' }, 'intra-op-threads': { type: 'string' } });
const report = new Report('profile');
const N = numberArg(args, 'events', args.long ? 40_000 : 15_000);
const U = numberArg(args, 'users', 10_000);
const outDir = OUT_DIR ?? join(REPO_ROOT, '.taste', 'bench', 'profile');
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 20_000 });
await waitForRedis(redis);
const kafka = benchKafka();

function runChild(argv: string[], profileDir: string): { exited: Promise<string>; kill: () => void } {
  mkdirSync(profileDir, { recursive: true });
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profileDir, ...argv], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_REDIS_URL: REDIS_URL, TASTE_BENCH_MODEL: MODEL_DIR },
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return {
    exited: new Promise((resolve, reject) => child.once('exit', (code, signal) => (code === 0 || signal === 'SIGTERM' ? resolve(out) : reject(new Error(`child exited ${code ?? signal}`))))),
    kill: () => child.kill('SIGTERM'),
  };
}

function profilesIn(dir: string, window?: { fromUs: number; toUs: number }): { label: string; summary: ProfileSummary }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => {
      const file = join(dir, f);
      const worker = readFileSync(file, 'utf8').includes('inference-worker.js');
      return { label: worker ? 'inference worker thread' : 'main thread', summary: summarizeProfile(file, 15, window) };
    })
    .filter(({ summary }) => summary.busyMs > 50);
}

const shareOf = (summary: ProfileSummary, category: string) => summary.byCategory.find((c) => c.category === category)?.share ?? 0;

// 1. The ingest path.
const topics = benchTopics();
const keyPrefix = unique('prof');
try {
  await createTopics(kafka, topics, 4);
  const traffic = await produceWorldEvents(kafka, topics, { users: U, count: N });
  const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix });
  await seedUsers(store, [...traffic.eventsByUser.keys()], metadata);
  const dir = join(outDir, 'profiles', 'ingest');
  const threadArgs = args.values['intra-op-threads'] ? ['--intra-op-threads', String(args.values['intra-op-threads'])] : [];
  const child = runChild(
    [`${REPO_ROOT}dist/bench/profile-ingest.js`, '--plays', topics.play, '--searches', topics.search, '--dead-letter', topics.deadLetter, '--key-prefix', keyPrefix, '--expected', String(traffic.sent), ...threadArgs],
    dir,
  );
  const result = JSON.parse((await child.exited).trim().split('\n').pop()!) as { eventsPerS: number; ms: number; fromUs: number; toUs: number };
  report.info(`stream job under --cpu-prof: ${traffic.sent} events from ${traffic.eventsByUser.size} users at ${fmt(result.eventsPerS)} events/s (${(result.ms / 1000).toFixed(1)} s); profiles in ${dir}`);
  // Only the samples from joined to done: start-up (module loading, model load) and shutdown left out.
  for (const { label, summary } of profilesIn(dir, { fromUs: result.fromUs, toUs: result.toUs })) {
    for (const line of formatProfile(summary, `ingest, ${label}`)) report.info(line);
    report.context(`ingest.${label}`, summary);
    const isWorker = label.startsWith('inference');
    const categories = isWorker
      ? ['onnxruntime (JS + native run)', 'worker messaging (postMessage/transfer)', 'GC']
      : ['kafkajs', 'protobufjs', 'decode/validate (events/)', 'ioredis', 'socket I/O syscalls', 'feature store codecs (featurestore/)', 'featurize/merge (events/featurization, model/features)', 'tensor building (model/features)', 'worker messaging (postMessage/transfer)', 'updater', 'GC', 'node core/native', 'V8/native (program)'];
    for (const category of categories) {
      report.figure({
        id: `profile.ingest.${isWorker ? 'worker' : 'main'}.${category.split(' ')[0]!.replace(/[^a-z0-9]/gi, '')}`,
        label: `ingest ${label}: self time in ${category}, share of the thread's busy time`,
        unit: '%',
        value: 100 * shareOf(summary, category),
      });
    }
  }
} finally {
  await deleteTopics(kafka, topics);
  await deleteKeys(redis, keyPrefix);
}

// 2. Serving under load (GetUserEmbedding, concurrency 16).
const servePrefix = unique('profserve');
try {
  const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: servePrefix });
  const userIds = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
  await seedUsers(store, userIds, metadata);
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
  const dir = join(outDir, 'profiles', 'serve');
  const child = runChild(
    [`${REPO_ROOT}dist/cli/main.js`, 'serve', '--host', '127.0.0.1', '--port', String(port), '--redis-url', REDIS_URL, '--key-prefix', servePrefix, '--model', MODEL_DIR, '--log-level', 'warn'],
    dir,
  );
  const client = createEmbeddingClient(`127.0.0.1:${port}`);
  for (let attempt = 0; ; attempt++) {
    try {
      await getUserEmbedding(client, { userId: userIds[0]! }, 1000);
      break;
    } catch (error) {
      if (attempt > 100) throw error;
      await sleep(100);
    }
  }
  const rng = new Random('profile-serve');
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const load = await closedLoop(() => getUserEmbedding(client, { userId: userIds[rng.int(userIds.length)]! }, 5000), 16, args.long ? 10_000 : 4_000);
  const toUs = Number(process.hrtime.bigint() / 1000n);
  client.close();
  child.kill();
  await child.exited;
  report.info(`taste serve under --cpu-prof: GetUserEmbedding c=16, ${fmt(load.qps)} calls/s; profiles in ${dir}`);
  for (const { summary } of profilesIn(dir, { fromUs, toUs })) {
    for (const line of formatProfile(summary, 'serve, main thread')) report.info(line);
    report.context('serve.main', summary);
    for (const category of ['grpc-js', 'http2 (gRPC transport, node core)', 'protobufjs', 'ioredis', 'socket I/O syscalls', 'serving', 'GC', 'node core/native', 'V8/native (program)']) {
      report.figure({
        id: `profile.serve.${category.split(' ')[0]!.replace(/[^a-z0-9]/gi, '')}`,
        label: `taste serve: self time in ${category}, share of busy time`,
        unit: '%',
        value: 100 * shareOf(summary, category),
      });
    }
  }
} finally {
  await deleteKeys(redis, servePrefix);
  redis.disconnect();
}
report.finish(OUT_DIR);
