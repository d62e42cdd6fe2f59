import { availableParallelism } from 'node:os';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import { type StreamJob, startStreamJob, type StreamJobOptions } from '../../consumers/stream-job.js';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import type { ModelBundle } from '../../model/model-bundle.js';
import { type BenchArgs, KAFKA_BROKERS, numberArg, REDIS_URL, unique } from './env.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { benchKafka, benchLogger, benchTopics, createTopics, deleteKeys, deleteTopics, seedUsers } from './services.js';
import { produceWorldEvents } from './traffic.js';
import { sleep } from './stats.js';

export interface StepRecord {
  at: number;
  users: number;
  messages: number;
  writes: number;
  conflicts: number;
}

export interface PipelineRun {
  messages: number;
  applied: number;
  duplicates: number;
  deadLettered: number;
  ms: number;
  eventsPerS: number;
  steps: StepRecord[];
  /** Messages per user per step (how much per-user coalescing saves the model). */
  eventsPerUserStep: number;
  usersPerStep: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  /** CPU of this process (main thread + inference worker + bench harness) per message, µs. */
  cpuUsPerEvent: number;
  keyPrefix: string;
}

export type JobOverrides = Partial<Pick<StreamJobOptions, 'inferenceWorkers' | 'intraOpThreads' | 'partitionsConsumedConcurrently' | 'chunkSize' | 'modelDir' | 'qualitySampleRate'>>;

/** The flags jobOverridesFromArgs reads, for a benchmark's benchArgs. */
export const JOB_OVERRIDE_OPTIONS = {
  'inference-workers': { type: 'string' },
  'intra-op-threads': { type: 'string' },
  'partitions-concurrently': { type: 'string' },
  'chunk-size': { type: 'string' },
} as const;

/** The job settings a benchmark's flags override: --inference-workers, --intra-op-threads, --partitions-concurrently, --chunk-size. */
export function jobOverridesFromArgs(args: BenchArgs): JobOverrides {
  const overrides: JobOverrides = {};
  if (args.values['inference-workers']) overrides.inferenceWorkers = numberArg(args, 'inference-workers', 1);
  if (args.values['intra-op-threads']) overrides.intraOpThreads = numberArg(args, 'intra-op-threads', 1);
  if (args.values['partitions-concurrently']) overrides.partitionsConsumedConcurrently = numberArg(args, 'partitions-concurrently', 2);
  if (args.values['chunk-size']) overrides.chunkSize = numberArg(args, 'chunk-size', 500);
  return overrides;
}

/** The real stream job on the local services, with a fresh consumer group. */
export function startBenchJob(bundle: ModelBundle, topics: StreamTopics, keyPrefix: string, options: Partial<StreamJobOptions> = {}): Promise<StreamJob> {
  return startStreamJob({
    modelDir: bundle.directory,
    kafka: { brokers: KAFKA_BROKERS, clientId: 'taste-bench' },
    redis: { url: REDIS_URL },
    topics,
    logger: benchLogger,
    groupId: unique('group'),
    keyPrefix,
    ...options,
  });
}

/** The intra-op threads the stream job's pool will use (its default: cores / workers). */
export function jobIntraOpThreads(overrides: JobOverrides): number {
  // Mirrors the pool's default (model/inference-pool.ts), so the ceiling runs with the same threads.
  return overrides.intraOpThreads ?? Math.max(1, Math.floor((availableParallelism() - 1) / (overrides.inferenceWorkers ?? 1)));
}

/**
 * The real stream job (consumers/stream-job.ts) on a pre-produced topic with a fresh group and key
 * prefix: seeds the touched users with a full history (unless `cold`), starts the job, and times
 * it from start-up done (joined) until `expected` messages are through (StreamConsumer.stats).
 */
export async function runPipeline(options: {
  bundle: ModelBundle;
  redis: RedisClient;
  topics: StreamTopics;
  expected: number;
  seedUserIds?: readonly string[];
  overrides?: JobOverrides;
  timeoutMs?: number;
  keepKeys?: boolean;
  /** Runs after seeding, before the job starts (e.g. erase some users). */
  beforeStart?: (store: FeatureStore) => Promise<void>;
  /** Shadow models the job runs beside `bundle` (seeded like it); their keys go with the run's. @default none */
  shadows?: readonly ModelBundle[];
  /** What the bench watches inside the job (observer, a counting Kafka consumer). */
  instruments?: Pick<StreamJobOptions, 'observer' | 'createConsumer'>;
}): Promise<PipelineRun> {
  const { bundle, redis, topics, expected } = options;
  const shadows = options.shadows ?? [];
  const keyPrefix = unique('ingest');
  const storeOf = (model: ModelBundle) => new FeatureStore({ redis, modelVersion: model.metadata.modelVersion, queryTokens: model.metadata.queryTokens, keyPrefix });
  const store = storeOf(bundle);
  if (options.seedUserIds) {
    for (const model of [bundle, ...shadows]) await seedUsers(storeOf(model), options.seedUserIds, model.metadata);
  }
  await options.beforeStart?.(store);
  const steps: StepRecord[] = [];
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const rssTimer = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 100);
  const job = await startBenchJob(bundle, topics, keyPrefix, {
    ...options.overrides,
    ...options.instruments,
    ...(shadows.length > 0 ? { shadowModelDirs: shadows.map((shadow) => shadow.directory) } : {}),
    onApplied: (summary, messages) =>
      steps.push({ at: performance.now(), users: summary.users, messages, writes: summary.writes, conflicts: summary.conflicts }),
  });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const m0 = job.consumer.stats.messages;
  let t1 = Number.NaN;
  let cpuUs = Number.NaN;
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    while (job.consumer.stats.messages < expected) {
      if (Date.now() > deadline) throw new Error(`pipeline: ${job.consumer.stats.messages} of ${expected} messages before the timeout`);
      await sleep(5);
    }
    t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    cpuUs = cpu.user + cpu.system;
  } finally {
    clearInterval(rssTimer);
    await job.stop();
    if (!options.keepKeys) await deleteKeys(redis, keyPrefix);
  }
  const { stats } = job.consumer;
  const users = steps.reduce((sum, step) => sum + step.users, 0);
  const messages = steps.reduce((sum, step) => sum + step.messages, 0);
  const ms = t1 - t0;
  return {
    messages: stats.messages,
    applied: stats.applied,
    duplicates: stats.duplicates,
    deadLettered: stats.deadLettered,
    ms,
    eventsPerS: ((stats.messages - m0) * 1000) / ms,
    steps,
    eventsPerUserStep: messages / users,
    usersPerStep: users / steps.length,
    rssBeforeMb: rssBefore / 2 ** 20,
    rssPeakMb: rssPeak / 2 ** 20,
    cpuUsPerEvent: cpuUs / (stats.messages - m0),
    keyPrefix,
  };
}

/** What `withPreProducedTraffic` hands its run: a bench Redis client, the topics, and the users the traffic touched. */
export interface PreProducedTraffic {
  redis: RedisClient;
  topics: StreamTopics;
  touched: string[];
}

/**
 * Simulated traffic of `users` users, `count` events, produced before `run` on fresh topics of 4
 * partitions, with a Redis client for the run; the topics are deleted and the client closed after.
 */
export async function withPreProducedTraffic<T>(options: { users: number; count: number }, run: (traffic: PreProducedTraffic) => Promise<T>): Promise<T> {
  const kafka = benchKafka();
  const topics = benchTopics();
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
  await waitForRedis(redis);
  await createTopics(kafka, topics, 4);
  try {
    const traffic = await produceWorldEvents(kafka, topics, options);
    return await run({ redis, topics, touched: [...traffic.eventsByUser.keys()] });
  } finally {
    await deleteTopics(kafka, topics);
    redis.disconnect();
  }
}
