import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { EventFeaturizer } from '../events/featurizer.js';
import { defaultValidationLimits, type ValidationLimits } from '../events/validation.js';
import { createKafka, type KafkaConnectionOptions } from '../consumers/kafka.js';
import { FeatureStore, type StateUpdate, type WriteOutcome, WriteOutcomes } from '../featurestore/feature-store.js';
import { createRedisClient, type RedisConnectionOptions, waitForRedis } from '../featurestore/redis-client.js';
import type { WindowEvent } from '../events/window-event.js';
import { InferencePool } from '../model/inference-pool.js';
import type { ExecutionProviderChoice } from '../model/inference-protocol.js';
import { loadModelBundle, type ModelBundle } from '../model/model-bundle.js';
import { advancerFor, type Stepper } from '../updater/advance.js';
import { type Embedder, Updater } from '../updater/updater.js';
import { type BackfillOptions, type BackfillSummary, runBackfill } from './backfill.js';
import { type Checkpoint, checkpointMismatch, type CheckpointSource, fingerprintOf, loadCheckpoint } from './checkpoint.js';
import { discoverFiles, displayName, type FileFormat, FileFormats } from './file-discovery.js';
import { gunzippedSize } from './file-bytes.js';
import { GroupedInput, type GroupingOptions } from './grouped-input.js';
import { fileCoordinates, fileDigest, type FileIdentity, FileIdentities } from './file-identity.js';
import { JsonlSource } from './jsonl-source.js';
import { KafkaCoordinateReader, type KafkaCoordinatesOptions, OffsetOrder } from './kafka-coordinates.js';
import { type KafkaRange, KafkaRangeReader, resolveKafkaRanges } from './kafka-range.js';
import { LengthGroupedEmbedder } from './length-grouped-embedder.js';
import { ParquetSource } from './parquet-source.js';
import { formatShard, type Shard, validateShard } from './shard.js';
import type { SourceReader } from './source.js';

/** What `updatedMs` (the `upd` field) is stamped with. */
export type UpdatedAt = 'last-event' | 'now' | number;

export type BackfillInput =
  | {
      kind: 'files';
      paths: string[];
      format?: FileFormat | undefined;
      identity?: FileIdentity;
      /** The records carry their Kafka coordinates (a sink connector's files): their events get the stream's identity, not the file's. */
      kafkaCoordinates?: KafkaCoordinatesOptions | undefined;
    }
  | { kind: 'kafka'; kafka: KafkaConnectionOptions; topics: { play: string; search: string }; maxBytesPerPartition?: number };

export interface BackfillJobOptions
  extends Pick<BackfillOptions, 'batchSize' | 'concurrency' | 'chunkSize' | 'checkpointPath' | 'failFast' | 'dryRun' | 'signal' | 'logger' | 'onProgress' | 'onInvalid'> {
  input: BackfillInput;
  /** Model directory: its version is the key version written. */
  modelDir: string;
  redis: RedisConnectionOptions;
  /** @default 'taste' */
  keyPrefix?: string;
  /** @default 'cpu' */
  executionProvider?: ExecutionProviderChoice;
  /** @default 1 */
  inferenceWorkers?: number;
  intraOpThreads?: number;
  /** Longest one inference run may take. @default 30000 */
  inferenceTimeoutMs?: number;
  /** Files: event times kept, [since, until). Kafka: the record-timestamp range whose offsets are read. */
  sinceMs?: number | undefined;
  untilMs?: number | undefined;
  /** Only these users. */
  users?: ReadonlySet<string> | undefined;
  /**
   * Only this shard's part: Kafka, its partitions; files, its users (docs/backfill.md). The shards
   * of one count together write exactly what an unsharded run writes. Count 1 is unsharded.
   */
  shard?: Shard | undefined;
  /** Oldest event time accepted. @default the stream's (2005-01-01) */
  minEventTimeMs?: number;
  /** @default 'last-event' */
  updatedAt?: UpdatedAt;
  /**
   * Files only: read the whole input first, sort it by user (DuckDB, spilling to disk), and apply
   * each user's history in one step (docs/backfill.md, "One pass per user"). @default streaming
   */
  groupByUser?: GroupingOptions | undefined;
  /** Wraps the inference pool (benchmarks record what the model was asked to do). */
  instrumentEmbedder?: (embedder: Embedder) => Embedder;
}

/** Writes nothing and reports every write as done: the dry run's updater counts what it would apply. */
class ReadOnlyFeatureStore extends FeatureStore {
  override async writeStates(updates: readonly StateUpdate[]): Promise<WriteOutcome[]> {
    return updates.map(() => WriteOutcomes.WRITTEN);
  }
}

/** The dry run infers nothing: zero vectors (finite, so no user is refused). */
class NoEmbedder implements Embedder {
  constructor(readonly dim: number) {}
  async embed(windows: readonly (readonly WindowEvent[])[]): Promise<Float32Array[]> {
    return windows.map(() => new Float32Array(this.dim));
  }
}

/** A dry run's stepper: keeps the state as it was and gives zero embeddings. */
function noStepper(dim: number): Stepper {
  return { step: async (steps) => steps.map((step) => ({ checkpoint: step.state, embedding: new Float32Array(dim) })) };
}

/** Everything a backfill needs, wired: model, sources, checkpoint, Redis, inference; then the run. */
export async function runBackfillJob(options: BackfillJobOptions): Promise<BackfillSummary> {
  const { logger } = options;
  const keyPrefix = options.keyPrefix ?? 'taste';
  const dryRun = options.dryRun ?? false;
  // Shard 0/1 is the whole input: it is the unsharded run, checkpoint and all.
  const shard = options.shard && validateShard(options.shard).count > 1 ? options.shard : undefined;
  const bundle = await loadModelBundle(options.modelDir);
  const { metadata } = bundle;
  const minEventTimeMs = options.minEventTimeMs ?? defaultValidationLimits.minEventTimeMs;
  const updatedAt = options.updatedAt ?? 'last-event';
  const chunkSize = options.chunkSize ?? 50_000;
  const context: OpenContext = { ...options, shard, minEventTimeMs, limits: { ...defaultValidationLimits, minEventTimeMs }, nowMs: Date.now(), bundle };

  const checkpoint = options.checkpointPath && !dryRun ? await loadCheckpoint(options.checkpointPath) : undefined;
  if (options.checkpointPath && dryRun) logger.warn('--dry-run ignores --checkpoint (it neither reads nor writes it)');

  const grouping = options.groupByUser;
  if (grouping && options.input.kind === 'kafka') {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, 'grouping by user is for files: a Kafka range is read partition by partition, a user in one of them');
  }
  const closers: Closer[] = [];
  try {
    const { sources, identities, inputFingerprint } = await openSources(options.input, checkpoint, context, closers);
    const fingerprint = fingerprintOf({
      input: inputFingerprint,
      sinceMs: options.sinceMs ?? null,
      untilMs: options.untilMs ?? null,
      users: options.users ? [...options.users].sort() : null,
      minEventTimeMs,
      updatedAt,
      chunkSize,
      // Absent in streaming runs, so their checkpoints keep the fingerprints they had.
      ...(grouping ? { groupByUser: true } : {}),
    });
    if (checkpoint) checkResumable(checkpoint, { fingerprint, modelVersion: metadata.modelVersion, keyPrefix, shard: shard ?? null, sources: identities }, options);

    const store = await openStore(options.redis, metadata, keyPrefix, dryRun, closers, logger);
    const inference = dryRun ? noInference(metadata.embeddingDim) : await startInference(options, bundle, closers);
    const updater = new Updater({
      store,
      advancer: advancerFor(metadata, inference),
      ...(updatedAt === 'now' ? {} : updatedAt === 'last-event' ? { updatedMsOf: newestEventMs } : { now: () => updatedAt }),
    });

    logger.info('backfill started', {
      model: metadata.modelVersion,
      keyPrefix,
      sources: sources.length,
      dryRun,
      shard: shard ? formatShard(shard) : 'none',
      batchSize: options.batchSize ?? 256,
      concurrency: options.concurrency ?? 2,
      chunkSize,
      groupByUser: grouping !== undefined,
    });
    const grouped = grouping
      ? new GroupedInput({ sources, chunkSize, stopAtBad: options.failFast ?? false, grouping, logger, ...(options.onInvalid ? { onInvalid: options.onInvalid } : {}) })
      : undefined;
    if (grouped) closers.push(() => grouped.close());
    return await runBackfill({
      sources: grouped ? [grouped.source] : sources,
      ...(grouped ? { chunks: (from) => grouped.chunks(from) } : {}),
      sourceIdentities: identities,
      updater,
      modelVersion: metadata.modelVersion,
      keyPrefix,
      fingerprint,
      chunkSize,
      // Kafka shards read subsets of the partitions: steps that never span two keep them the unsharded run's steps.
      splitAtSources: options.input.kind === 'kafka',
      shard,
      checkpointPath: options.checkpointPath,
      resumeFrom: checkpoint,
      dryRun,
      logger,
      ...(options.batchSize ? { batchSize: options.batchSize } : {}),
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      ...(options.failFast ? { failFast: true } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.onInvalid ? { onInvalid: options.onInvalid } : {}),
    });
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}

/** What is opened is closed when the job ends, last opened first. */
type Closer = () => Promise<void>;

/** What opening the sources needs of the job's options, with the validation settled and the model loaded. */
type OpenContext = Pick<BackfillJobOptions, 'sinceMs' | 'untilMs' | 'users' | 'shard' | 'logger'> & {
  minEventTimeMs: number;
  limits: ValidationLimits;
  nowMs: number;
  bundle: ModelBundle;
};

interface OpenedSources {
  sources: SourceReader[];
  identities: CheckpointSource[];
  /** What of the input shapes the written state, for the checkpoint's fingerprint. */
  inputFingerprint: unknown;
}

async function openSources(input: BackfillInput, checkpoint: Checkpoint | undefined, context: OpenContext, closers: Closer[]): Promise<OpenedSources> {
  if (input.kind === 'files') {
    const { paths, format, identity = FileIdentities.CONTENT, kafkaCoordinates } = input;
    return {
      ...(await openFiles(paths, format, identity, kafkaCoordinates, context)),
      inputFingerprint: { kind: 'files', identity, ...(kafkaCoordinates ? { kafkaCoordinates } : {}) },
    };
  }
  return { ...(await openKafkaRanges(input, checkpoint, context, closers)), inputFingerprint: { kind: 'kafka', topics: input.topics } };
}

/** The Kafka ranges to read: the checkpoint's when resuming (so the range does not move), else those of --since/--until now. */
async function openKafkaRanges(
  input: Extract<BackfillInput, { kind: 'kafka' }>,
  checkpoint: Checkpoint | undefined,
  context: OpenContext,
  closers: Closer[],
): Promise<Omit<OpenedSources, 'inputFingerprint'>> {
  const { logger, bundle } = context;
  const { kafka: connection, topics, maxBytesPerPartition } = input;
  const kafka = createKafka(connection, logger);
  const ranges: KafkaRange[] = checkpoint
    ? checkpoint.sources.map((source) => kafkaRangeOf(source))
    : await resolveKafkaRanges(kafka, topics, context.sinceMs, context.untilMs, context.shard);
  const reader = new KafkaRangeReader({
    kafka,
    topics,
    logger,
    users: context.users,
    nowMs: context.nowMs,
    ...(maxBytesPerPartition ? { maxBytesPerPartition } : {}),
    featurizer: new EventFeaturizer({
      vocabulary: bundle.vocabulary,
      queryTokens: bundle.metadata.queryTokens,
      queryBuckets: bundle.metadata.queryBuckets,
      limits: context.limits,
    }),
  });
  if (ranges.length > 0) {
    await reader.start();
    closers.push(() => reader.close());
  }
  logger.info('kafka range', { ranges: ranges.map((range) => `${range.topic}[${range.partition}] ${range.from}..${range.to}`) });
  return {
    sources: ranges.map((range) => reader.source(range)),
    identities: ranges.map((range) => ({ label: `${range.topic}[${range.partition}]`, key: `${range.topic}:${range.partition}`, from: range.from, to: range.to })),
  };
}

/** A checkpoint made with other options (or other inputs) would apply the rest of a different run: refused, saying why. */
function checkResumable(checkpoint: Checkpoint, current: Parameters<typeof checkpointMismatch>[1], options: Pick<BackfillJobOptions, 'checkpointPath' | 'logger'>): void {
  const why = checkpointMismatch(checkpoint, current);
  if (why) {
    throw new TasteError(
      ErrorCodes.CONFIG_INVALID,
      `checkpoint ${options.checkpointPath} cannot be resumed: ${why}. Run with the options it was made with, or remove it to start over`,
    );
  }
  options.logger.info('resuming from checkpoint', {
    checkpoint: options.checkpointPath,
    source: checkpoint.sources[checkpoint.source]?.label ?? '(all read)',
    cursor: checkpoint.cursor,
  });
}

/** The feature store for the model's keys; a dry run's writes nothing. */
async function openStore(redisOptions: RedisConnectionOptions, metadata: ModelBundle['metadata'], keyPrefix: string, dryRun: boolean, closers: Closer[], logger: Logger): Promise<FeatureStore> {
  const redis = createRedisClient({ connectionName: 'taste-backfill', ...redisOptions });
  closers.push(async () => redis.disconnect());
  await waitForRedis(redis);
  const storeOptions = {
    redis,
    modelVersion: metadata.modelVersion,
    queryTokens: metadata.queryTokens,
    queryBuckets: metadata.queryBuckets,
    keyPrefix,
    ...(metadata.stateful ? { stateDim: metadata.stateful.stateDim } : {}),
    onBatchReadsRefused: (reason: string) =>
      logger.warn('batched state reads refused: reading one HMGET per user from now on (the reason says why: a user without +evalsha +eval, or a Redis older than 7; docs/deployment.md)', { modelVersion: metadata.modelVersion, reason }),
  };
  return dryRun ? new ReadOnlyFeatureStore(storeOptions) : new FeatureStore(storeOptions);
}

interface Inference {
  embedder: Embedder;
  stepper: Stepper;
}

/** The inference pool, as the windowed kind's embedder (windows grouped by length) and the stateful kind's stepper. */
async function startInference(options: BackfillJobOptions, bundle: ModelBundle, closers: Closer[]): Promise<Inference> {
  const pool = await InferencePool.start({
    bundle,
    executionProvider: options.executionProvider ?? 'cpu',
    workers: options.inferenceWorkers ?? 1,
    ...(options.intraOpThreads ? { intraOpThreads: options.intraOpThreads } : {}),
    ...(options.inferenceTimeoutMs ? { taskTimeoutMs: options.inferenceTimeoutMs } : {}),
    observer: {
      onEvent: (event) => {
        if (event.type === 'provider-chosen') options.logger.info('execution provider chosen (auto)', { provider: event.provider, skipped: event.skipped });
      },
    },
  });
  closers.push(() => pool.close());
  return { embedder: new LengthGroupedEmbedder(options.instrumentEmbedder ? options.instrumentEmbedder(pool) : pool), stepper: pool };
}

/** A dry run infers nothing. */
function noInference(dim: number): Inference {
  return { embedder: new NoEmbedder(dim), stepper: noStepper(dim) };
}

function newestEventMs(window: readonly WindowEvent[]): number {
  return window[window.length - 1]?.eventTimeMs ?? 0;
}

function kafkaRangeOf(source: CheckpointSource): KafkaRange {
  const cut = source.key.lastIndexOf(':');
  if (cut <= 0 || source.from === undefined || source.to === undefined) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `the checkpoint's source ${source.label} is not a Kafka range (it was made for files)`);
  }
  return { topic: source.key.slice(0, cut), partition: Number(source.key.slice(cut + 1)), from: source.from, to: source.to };
}

async function openFiles(
  paths: readonly string[],
  format: FileFormat | undefined,
  identity: FileIdentity,
  kafkaCoordinates: KafkaCoordinatesOptions | undefined,
  options: OpenContext,
): Promise<{ sources: SourceReader[]; identities: CheckpointSource[] }> {
  const { logger, bundle } = options;
  if (kafkaCoordinates && (options.sinceMs !== undefined || options.untilMs !== undefined)) {
    // A mark covers every offset below it: an event left out by its time between two applied ones of its partition would count as applied, for the stream too.
    throw new TasteError(
      ErrorCodes.CONFIG_INVALID,
      "Kafka coordinates and --since/--until do not go together: the events share the stream's high-water marks, so one left out by time before an applied one of its partition would count as applied; give the files of the period instead",
    );
  }
  const kafka = kafkaCoordinates ? new KafkaCoordinateReader(kafkaCoordinates) : undefined;
  const files = await discoverFiles(paths, format);
  const featurizer = new EventFeaturizer({
    vocabulary: bundle.vocabulary,
    queryTokens: bundle.metadata.queryTokens,
    queryBuckets: bundle.metadata.queryBuckets,
    limits: options.limits,
  });
  const filter = { users: options.users, shard: options.shard, sinceMs: options.sinceMs, untilMs: options.untilMs };
  const selection = { sinceMs: options.sinceMs, untilMs: options.untilMs, minEventTimeMs: options.minEventTimeMs };
  const sources: (JsonlSource | ParquetSource)[] = [];
  const identities: CheckpointSource[] = [];
  const labelByKey = new Map<string, string>();
  if (identity === FileIdentities.CONTENT && files.length > 0) {
    logger.info('hashing input files (their identity for deduplication)', { files: files.length, bytes: files.reduce((sum, file) => sum + file.bytes, 0) });
  }
  for (const file of files) {
    const label = displayName(file.path);
    const coordinates = fileCoordinates(await fileDigest(file.path, identity), selection);
    const key = `${coordinates.topic}:${coordinates.partition}`;
    const twin = labelByKey.get(key);
    if (twin !== undefined) {
      if (identity === FileIdentities.NAME) {
        throw new TasteError(ErrorCodes.CONFIG_INVALID, `${label} and ${twin} have the same base name, which --file-identity name cannot tell apart`);
      }
      logger.warn('skipping a file with the same content as one before it (its events would all be duplicates)', { file: label, same: twin });
      continue;
    }
    labelByKey.set(key, label);
    const common = { path: file.path, label, coordinates, kafka, featurizer, filter, nowMs: options.nowMs };
    if (file.format === FileFormats.PARQUET) {
      sources.push(await ParquetSource.open(common));
    } else {
      // A gzip file's progress counts its text, as its cursor does; reading it through first also refuses a corrupt one before any write.
      const bytes = file.gzip ? await gunzippedSize({ path: file.path, label }) : file.bytes;
      sources.push(new JsonlSource({ ...common, gzip: file.gzip, bytes }));
    }
    identities.push({ label, key });
  }
  if (kafka) await checkOffsetOrder(sources, logger);
  return { sources, identities };
}

/**
 * Files with Kafka coordinates: every topic-partition's offsets must increase through the input
 * (kafka-coordinates.ts OffsetOrder), checked over all files before anything is written. Every run
 * checks the whole input, a resumed one or a shard too: the rule is about the input, not the part read.
 */
async function checkOffsetOrder(sources: readonly (JsonlSource | ParquetSource)[], logger: OpenContext['logger']): Promise<void> {
  logger.info('checking the Kafka offset order of the input files', { files: sources.length });
  const order = new OffsetOrder();
  for (const source of sources) {
    for await (const batch of source.scanCoordinates()) {
      for (const { at, coordinate } of batch) order.see(coordinate, source.locate(at));
    }
  }
  // A gap is compaction, a transaction marker or a file left out: the log shows it for the operator to check.
  logger.info('Kafka offsets in order', { partitions: order.partitions, ...order.gaps });
}

