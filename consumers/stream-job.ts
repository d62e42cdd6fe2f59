import type { Logger } from '../common/logger.js';
import { FeatureStore, type FeatureStoreObserver, MAX_VERSIONS_PER_WRITE, type RedisClient } from '../featurestore/feature-store.js';
import { createRedisClient, type RedisConnectionOptions, waitForRedis } from '../featurestore/redis-client.js';
import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { InferencePool, type InferencePoolEvent, type InferencePoolObserver, type InferencePoolOptions } from '../model/inference-pool.js';
import type { ExecutionProvider, ExecutionProviderChoice } from '../model/inference-protocol.js';
import { loadModelBundle, type ModelBundle } from '../model/model-bundle.js';
import { advancerFor, type Stepper } from '../updater/advance.js';
import { LiveQuality } from '../updater/live-quality.js';
import { type Embedder, Updater, type UpdateSummary } from '../updater/updater.js';
import { EventFeaturizer } from '../events/featurizer.js';
import { defaultValidationLimits } from '../events/validation.js';
import { createKafka, ensureTopics, type KafkaConnectionOptions, longestRetentionMs } from './kafka.js';
import { StreamConsumer, type StreamConsumerObserver, type StreamConsumerOptions, type StreamTopics } from './stream-consumer.js';

export interface StreamJobOptions {
  modelDir: string;
  /**
   * Shadow models (docs/rollout.md): advanced from the same Kafka read beside the primary, each
   * written under its own model version in the same atomic step per user. One that cannot load
   * refuses the start; one whose inference fails at run time is suspended, never the primary.
   * @default none
   */
  shadowModelDirs?: readonly string[];
  kafka: KafkaConnectionOptions;
  redis: RedisConnectionOptions;
  topics: StreamTopics;
  logger: Logger;
  /** @default 'taste' */
  groupId?: string;
  /** @default 'taste' */
  keyPrefix?: string;
  /** `auto`: the best provider that starts here (InferencePoolOptions.executionProvider); shadows then run on the same one. @default 'cpu' */
  executionProvider?: ExecutionProviderChoice;
  /** @default 1 */
  inferenceWorkers?: number;
  /** Threads per inference session. @default cores / workers */
  intraOpThreads?: number;
  /** Longest one inference run may take. @default 30000 */
  inferenceTimeoutMs?: number;
  /**
   * Called when the member turns ready (joined its group, inference workers up) or not ready
   * (no inference worker left: its partitions cannot move until one is back). Wire it to /readyz.
   */
  onReadinessChange?: (ready: boolean) => void;
  /** Test seam: how inference worker threads start (see InferencePoolOptions.createWorker). */
  createInferenceWorker?: InferencePoolOptions['createWorker'];
  /** Create missing topics at start (off where topics are managed elsewhere, e.g. Strimzi). @default true */
  createTopics?: boolean;
  /** Partitions for topics this job has to create; existing topics are left alone. @default 4 */
  topicPartitions?: number;
  /** @default 500 */
  chunkSize?: number;
  /** @default 2 */
  partitionsConsumedConcurrently?: number;
  /** @default 30000 */
  sessionTimeoutMs?: number;
  /** See StreamConsumerOptions.stallTimeoutMs. @default 120000 */
  stallTimeoutMs?: number;
  /**
   * How long an erasure's tombstone outlives its request time (docs/erasure.md): a number of ms,
   * or 'forever'. @default the event topics' longest retention + TOMBSTONE_LATENESS_MS; forever
   * if one keeps records forever or is compacted
   */
  tombstoneLifetimeMs?: number | 'forever';
  /**
   * Live quality (docs/rollout.md): the share of plays ranked, before they are applied, against the
   * embedding of every version this job runs; totals go to Redis per hour. 0 turns it off.
   * @default DEFAULT_QUALITY_SAMPLE_RATE
   */
  qualitySampleRate?: number;
  /** Events older than this are refused (dead-lettered). @default 2005-01-01 */
  minEventTimeMs?: number;
  onApplied?: (summary: UpdateSummary, messages: number) => void;
  /** Told what the job's parts do (metrics of Redis, inference, events, lag, freshness). */
  observer?: StreamJobObserver;
  /** Wraps the model, e.g. to inject faults in tests. */
  decorateEmbedder?: (embedder: Embedder) => Embedder;
  /** Test seam: see StreamConsumerOptions.createConsumer. */
  createConsumer?: StreamConsumerOptions['createConsumer'];
}

/** What the stream job reports: its store's, pool's and consumer's observers, and its model time. */
export interface StreamJobObserver {
  store?: FeatureStoreObserver;
  /** Told after the job has logged each event. */
  pool?: InferencePoolObserver;
  consumer?: StreamConsumerObserver;
  /** Model time of each updater call (all users of a step), `decorateEmbedder`'s wrapper included. */
  onInference?(seconds: number): void;
  /** Model time of each call of a shadow model's pool (all users of a step in that version). */
  onShadowInference?(modelVersion: string, seconds: number): void;
  /** A step's live quality totals could not be added to Redis: lost, the stream went on. */
  onQualityRecordFailed?(modelVersion: string, error: Error): void;
}

export interface StreamJob {
  bundle: ModelBundle;
  store: FeatureStore;
  /** The shadow models, in the order given, with their stores. */
  shadows: { bundle: ModelBundle; store: FeatureStore }[];
  /** Each shadow's version, and why it was suspended (undefined while it runs). */
  shadowStatus(): { modelVersion: string; suspended: string | undefined }[];
  consumer: StreamConsumer;
  redis: RedisClient;
  stop(): Promise<void>;
}

/**
 * What the derived tombstone lifetime adds to the topics' retention: how late after its event time
 * an event may still be produced. An event produced later than that, older than an erasure whose
 * tombstone has expired, would be applied (docs/erasure.md says so, and how to set the lifetime).
 */
export const TOMBSTONE_LATENESS_MS = 7 * 24 * 3600 * 1000;

/** 1 % of plays: enough for a standard error of HR@10 near 0.005 within an hour at 1,000 plays/s (docs/rollout.md), at a cost bench/ measures. */
export const DEFAULT_QUALITY_SAMPLE_RATE = 0.01;

/** Everything the streaming job needs, wired and started: model, Redis, topics, consumer group. */
export async function startStreamJob(options: StreamJobOptions): Promise<StreamJob> {
  const { logger, observer } = options;
  const bundle = await loadModelBundle(options.modelDir);
  const { metadata } = bundle;
  const shadowBundles = await loadShadowBundles(options.shadowModelDirs ?? [], metadata.modelVersion);
  let joined = false;
  let inferenceUp = false;
  let ready = false;
  const reportReadiness = () => {
    if (ready === (joined && inferenceUp)) return;
    ready = !ready;
    options.onReadinessChange?.(ready);
  };
  const pool = await InferencePool.start({
    bundle,
    executionProvider: options.executionProvider ?? 'cpu',
    workers: options.inferenceWorkers ?? 1,
    ...(options.intraOpThreads ? { intraOpThreads: options.intraOpThreads } : {}),
    ...(options.inferenceTimeoutMs ? { taskTimeoutMs: options.inferenceTimeoutMs } : {}),
    ...(options.createInferenceWorker ? { createWorker: options.createInferenceWorker } : {}),
    observer: {
      onStarted: (workers) => observer?.pool?.onStarted?.(workers),
      onEvent: (event) => {
        logPoolEvent(event, logger);
        observer?.pool?.onEvent?.(event);
        if (event.type === 'health') {
          inferenceUp = event.healthy;
          reportReadiness();
        }
      },
    },
  });
  const shadowPools: InferencePool[] = [];
  const redis = createRedisClient({ connectionName: 'taste-consumer', ...options.redis });
  const stopAll = async () => {
    await pool.close();
    await Promise.all(shadowPools.map((shadowPool) => shadowPool.close()));
    redis.disconnect();
  };
  try {
    for (const shadow of shadowBundles) shadowPools.push(await startShadowPool(shadow, options, pool.executionProvider));
    await waitForRedis(redis);
    const storeOf = (model: ModelBundle) =>
      new FeatureStore({
        redis,
        modelVersion: model.metadata.modelVersion,
        queryTokens: model.metadata.queryTokens,
        queryBuckets: model.metadata.queryBuckets,
        ...(model.metadata.stateful ? { stateDim: model.metadata.stateful.stateDim } : {}),
        keyPrefix: options.keyPrefix ?? 'taste',
        ...(observer?.store ? { observer: observer.store } : {}),
        onBatchReadsRefused: (reason) =>
          logger.warn('batched state reads refused: reading one HMGET per user from now on (the reason says why: a user without +evalsha +eval, or a Redis older than 7; docs/deployment.md)', { modelVersion: model.metadata.modelVersion, reason }),
      });
    const store = storeOf(bundle);
    const shadows = shadowBundles.map((shadow) => ({ bundle: shadow, store: storeOf(shadow) }));
    const qualitySampleRate = options.qualitySampleRate ?? DEFAULT_QUALITY_SAMPLE_RATE;
    const liveQuality =
      qualitySampleRate > 0
        ? new LiveQuality({
            sampleRate: qualitySampleRate,
            itemTables: new Map([bundle, ...shadowBundles].map((model) => [model.metadata.modelVersion, model.itemTable])),
            redis,
            keyPrefix: options.keyPrefix ?? 'taste',
            onRecordFailed: (modelVersion, error) => {
              logger.warn('live quality totals lost: adding them to Redis failed', { scoredVersion: modelVersion, error: describeError(error) });
              observer?.onQualityRecordFailed?.(modelVersion, error);
            },
          })
        : undefined;
    const updater = new Updater({
      store,
      advancer: advancerFor(metadata, { embedder: embedderFor(pool, options), stepper: stepperFor(pool, options) }),
      shadows: shadows.map((shadow, index) => ({ store: shadow.store, advancer: advancerFor(shadow.bundle.metadata, shadowInference(shadowPools[index]!, shadow.bundle.metadata.modelVersion, observer)) })),
      ...(liveQuality ? { liveQuality } : {}),
    });
    const kafka = createKafka(options.kafka, logger);
    const partitions = options.topicPartitions ?? 4;
    if (options.createTopics ?? true) {
      await ensureTopics(kafka, [
        { topic: options.topics.play, partitions },
        { topic: options.topics.search, partitions },
        { topic: options.topics.deadLetter, partitions: 1 },
        ...(options.topics.erasure ? [{ topic: options.topics.erasure, partitions }] : []),
      ]);
    }
    const erasureTopic = options.topics.erasure;
    const tombstoneLifetimeMs = erasureTopic ? await tombstoneLifetime(kafka, options) : undefined;
    if (erasureTopic) logger.info('erasures', { topic: erasureTopic, tombstoneLifetimeMs: tombstoneLifetimeMs ?? 'forever' });
    const consumer = new StreamConsumer({
      kafka,
      topics: options.topics,
      logger,
      updater,
      observer: {
        ...observer?.consumer,
        onMembership: (member) => {
          joined = member;
          reportReadiness();
          observer?.consumer?.onMembership?.(member);
        },
      },
      ...(options.stallTimeoutMs ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
      ...(erasureTopic ? { erasure: { topic: erasureTopic, eraser: store, ...(tombstoneLifetimeMs === undefined ? {} : { tombstoneLifetimeMs }) } } : {}),
      ...(options.createConsumer ? { createConsumer: options.createConsumer } : {}),
      featurizer: new EventFeaturizer({
        vocabulary: bundle.vocabulary,
        queryTokens: metadata.queryTokens,
        queryBuckets: metadata.queryBuckets,
        shadows: shadowBundles.map((shadow) => ({ vocabulary: shadow.vocabulary, queryTokens: shadow.metadata.queryTokens, queryBuckets: shadow.metadata.queryBuckets })),
        limits: { ...defaultValidationLimits, ...(options.minEventTimeMs === undefined ? {} : { minEventTimeMs: options.minEventTimeMs }) },
      }),
      ...(options.groupId ? { groupId: options.groupId } : {}),
      ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}),
      ...(options.partitionsConsumedConcurrently ? { partitionsConsumedConcurrently: options.partitionsConsumedConcurrently } : {}),
      ...(options.sessionTimeoutMs ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
      ...(options.onApplied ? { onApplied: options.onApplied } : {}),
    });
    await consumer.start();
    logger.info('stream job started', {
      model: metadata.modelVersion,
      ...(shadows.length > 0 ? { shadows: shadows.map((shadow) => shadow.bundle.metadata.modelVersion) } : {}),
      provider: pool.executionProvider,
      qualitySampleRate,
      topics: options.topics,
      group: options.groupId ?? 'taste',
    });
    return {
      bundle,
      store,
      shadows,
      shadowStatus: () => updater.shadowStatus,
      consumer,
      redis,
      stop: async () => {
        joined = false;
        reportReadiness();
        await consumer.stop();
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The shadows' model directories, loaded and checked: a shadow that cannot run refuses the start, naming it. */
async function loadShadowBundles(directories: readonly string[], primaryVersion: string): Promise<ModelBundle[]> {
  const bundles: ModelBundle[] = [];
  const versions = new Set([primaryVersion]);
  for (const directory of directories) {
    let shadow: ModelBundle;
    try {
      shadow = await loadModelBundle(directory);
    } catch (cause) {
      const code = cause instanceof TasteError ? cause.code : ErrorCodes.MODEL_LOAD;
      throw new TasteError(code, `shadow model ${directory}: ${describeError(cause)}`, { cause });
    }
    const version = shadow.metadata.modelVersion;
    if (versions.has(version)) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `shadow model ${directory} is model version "${version}", which this job already runs: a shadow needs a version of its own`);
    }
    versions.add(version);
    bundles.push(shadow);
  }
  if (bundles.length + 1 > MAX_VERSIONS_PER_WRITE) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `${bundles.length} shadow models: at most ${MAX_VERSIONS_PER_WRITE - 1} beside the primary`);
  }
  return bundles;
}

/** A shadow's own inference workers; a shadow whose model ONNX Runtime will not load refuses the start. */
async function startShadowPool(shadow: ModelBundle, options: StreamJobOptions, executionProvider: ExecutionProvider): Promise<InferencePool> {
  const version = shadow.metadata.modelVersion;
  try {
    return await InferencePool.start({
      bundle: shadow,
      executionProvider,
      workers: options.inferenceWorkers ?? 1,
      ...(options.intraOpThreads ? { intraOpThreads: options.intraOpThreads } : {}),
      ...(options.inferenceTimeoutMs ? { taskTimeoutMs: options.inferenceTimeoutMs } : {}),
      observer: { onEvent: (event) => logPoolEvent(event, options.logger.child({ shadow: version })) },
    });
  } catch (cause) {
    const code = cause instanceof TasteError ? cause.code : ErrorCodes.MODEL_LOAD;
    throw new TasteError(code, `shadow model ${shadow.directory} (version "${version}"): ${describeError(cause)}`, { cause });
  }
}

/** The configured tombstone lifetime, or the event topics' longest retention plus the lateness allowed; undefined: forever. */
async function tombstoneLifetime(kafka: Parameters<typeof longestRetentionMs>[0], options: StreamJobOptions): Promise<number | undefined> {
  const configured = options.tombstoneLifetimeMs;
  if (configured === 'forever') return undefined;
  if (configured !== undefined) return configured;
  const retention = await longestRetentionMs(kafka, [options.topics.play, options.topics.search]);
  return retention === undefined ? undefined : retention + TOMBSTONE_LATENESS_MS;
}

function embedderFor(pool: InferencePool, options: StreamJobOptions): Embedder {
  const base = options.decorateEmbedder?.(pool) ?? pool;
  const onInference = options.observer?.onInference;
  if (!onInference) return base;
  return { embed: (windows) => timed(() => base.embed(windows), onInference) };
}

function stepperFor(pool: InferencePool, options: StreamJobOptions): Stepper {
  const onInference = options.observer?.onInference;
  if (!onInference) return pool;
  return { step: (steps) => timed(() => pool.step(steps), onInference) };
}

/** A shadow's pool as embedder and stepper, timed per call under its version when the observer wants it. */
function shadowInference(pool: InferencePool, modelVersion: string, observer: StreamJobObserver | undefined): { embedder: Embedder; stepper: Stepper } {
  const onShadowInference = observer?.onShadowInference;
  if (!onShadowInference) return { embedder: pool, stepper: pool };
  const report = (seconds: number) => onShadowInference(modelVersion, seconds);
  return {
    embedder: { embed: (windows) => timed(() => pool.embed(windows), report) },
    stepper: { step: (steps) => timed(() => pool.step(steps), report) },
  };
}

/** Runs `work` and reports how long it took, failed or not. */
async function timed<T>(work: () => Promise<T>, report: (seconds: number) => void): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    report((performance.now() - started) / 1000);
  }
}

/** Logs what happens to the inference workers. */
function logPoolEvent(event: InferencePoolEvent, logger: Logger): void {
  switch (event.type) {
    case 'worker-exited':
      logger.warn('inference worker lost; starting a replacement', { workersLeft: event.workersLeft });
      return;
    case 'respawn-failed':
      logger.error('inference worker replacement failed to start; trying again', {
        attempt: event.attempt,
        retryInMs: event.retryInMs,
        code: event.error.code,
        error: describeError(event.error),
      });
      return;
    case 'task-timed-out':
      logger.error(event.workerReplaced ? 'inference run timed out; its worker is being replaced' : 'inference run timed out waiting for a worker', { timeoutMs: event.timeoutMs });
      return;
    case 'worker-replaced':
      logger.info('inference worker replaced', { workers: event.workers });
      return;
    case 'health':
      if (!event.healthy) logger.error('no inference worker is running; not ready until one starts');
      return;
    case 'provider-chosen':
      logger.info('execution provider chosen (auto)', { provider: event.provider, skipped: event.skipped });
      return;
  }
}
