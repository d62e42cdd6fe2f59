import { readFile } from 'node:fs/promises';
import { StopReasons } from '../backfill/backfill.js';
import type { FileFormat } from '../backfill/file-discovery.js';
import type { FileIdentity } from '../backfill/file-identity.js';
import { DEFAULT_KAFKA_COORDINATE_FIELDS, type KafkaCoordinatesOptions } from '../backfill/kafka-coordinates.js';
import { type BackfillInput, runBackfillJob, type UpdatedAt } from '../backfill/job.js';
import { formatSummary, ProgressDisplay } from '../backfill/progress.js';
import { formatShard, type Shard } from '../backfill/shard.js';
import { createLogger, type LogLevel } from '../common/logger.js';
import { isValidUserId } from '../events/user-id.js';
import type { ExecutionProviderChoice } from '../model/inference-protocol.js';
import { kafkaFlags, logFlags, modelFlags, redisFlags } from './common-flags.js';
import { type FlagSpecs, type FlagValues, formatHelp, parseFlags, UsageError } from './flags.js';
import { kafkaOptions, parseTime, redisOptions, ShutdownSignal } from './options.js';

// The dead-letter topic and topic creation are the stream's business: a backfill creates nothing.
const { 'dead-letter-topic': _deadLetter, 'topic-partitions': _partitions, ...backfillKafkaFlags } = kafkaFlags;

const flags = {
  kafka: { type: 'boolean', env: 'TASTE_BACKFILL_KAFKA', default: false, description: 'read the play and search topics between --since and --until instead of files' },
  since: { type: 'string', env: 'TASTE_BACKFILL_SINCE', description: 'start (inclusive), ISO 8601 or ms since the epoch: event time for files, record time for --kafka' },
  until: { type: 'string', env: 'TASTE_BACKFILL_UNTIL', description: 'end (exclusive), like --since (--kafka: default the log end at start)' },
  user: { type: 'string', multiple: true, description: 'only this user; repeatable, or a comma-separated list' },
  'users-file': { type: 'string', env: 'TASTE_BACKFILL_USERS_FILE', description: 'only the users listed in this file, one per line' },
  'dry-run': { type: 'boolean', env: 'TASTE_BACKFILL_DRY_RUN', default: false, description: 'read, validate and featurize, count what would be applied against Redis; write nothing, no inference' },
  'batch-size': { type: 'integer', env: 'TASTE_BACKFILL_BATCH_SIZE', default: 256, min: 1, description: 'users per updater batch (one inference batch)' },
  concurrency: { type: 'integer', env: 'TASTE_BACKFILL_CONCURRENCY', default: 2, min: 1, description: 'batches in flight at once (they never share a user)' },
  'chunk-size': { type: 'integer', env: 'TASTE_BACKFILL_CHUNK_SIZE', default: 50_000, min: 1, description: 'records per step: grouped by user, applied, then checkpointed' },
  'group-by-user': {
    type: 'boolean',
    env: 'TASTE_BACKFILL_GROUP_BY_USER',
    default: false,
    description: "files: read them all first, sort by user (DuckDB), then one step per user's whole history; steps of --chunk-size events cut between users",
  },
  'group-memory': { type: 'string', env: 'TASTE_BACKFILL_GROUP_MEMORY', default: '1GB', description: "--group-by-user: DuckDB's memory limit; beyond it the sort spills to --group-temp-dir" },
  'group-temp-dir': { type: 'string', env: 'TASTE_BACKFILL_GROUP_TEMP_DIR', description: '--group-by-user: where DuckDB keeps the sorted copy and spills, in a new folder removed at the end (default: the OS temporary directory)' },
  checkpoint: { type: 'string', env: 'TASTE_BACKFILL_CHECKPOINT', description: 'checkpoint file: written after each step; a run with the same options resumes from it' },
  shard: { type: 'string', env: 'TASTE_BACKFILL_SHARD', description: 'only shard I of N, "I/N" (0-based): --kafka, the partitions p with p mod N = I; files, the users hashed to I (docs/backfill.md)' },
  shards: { type: 'integer', env: 'TASTE_BACKFILL_SHARDS', min: 1, description: 'the shard count N, the index I being JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it) unless --shard gives it' },
  'fail-fast': { type: 'boolean', env: 'TASTE_BACKFILL_FAIL_FAST', default: false, description: 'stop (exit 1) at the first bad record instead of skipping it' },
  format: { type: 'string', env: 'TASTE_BACKFILL_FORMAT', default: 'auto', choices: ['auto', 'jsonl', 'parquet'], description: 'input file format (auto: by extension; a .gz file is JSONL read through gunzip)' },
  'file-identity': { type: 'string', env: 'TASTE_BACKFILL_FILE_IDENTITY', default: 'content', choices: ['content', 'name'], description: 'what makes a file the same source on a re-run (docs/backfill.md)' },
  'kafka-coordinates': {
    type: 'string',
    env: 'TASTE_BACKFILL_KAFKA_COORDINATES',
    default: 'none',
    choices: ['none', 'fields'],
    description:
      "files: 'fields' applies each record under the Kafka topic, partition and offset in its fields (a sink connector's files): the stream's own identity, so the backfill and the stream drop each other's events (docs/backfill.md)",
  },
  'kafka-topic-field': { type: 'string', env: 'TASTE_BACKFILL_KAFKA_TOPIC_FIELD', default: DEFAULT_KAFKA_COORDINATE_FIELDS.topic, description: "with --kafka-coordinates fields: the field holding the record's topic (InsertField's topic.field)" },
  'kafka-partition-field': { type: 'string', env: 'TASTE_BACKFILL_KAFKA_PARTITION_FIELD', default: DEFAULT_KAFKA_COORDINATE_FIELDS.partition, description: "… its partition (partition.field)" },
  'kafka-offset-field': { type: 'string', env: 'TASTE_BACKFILL_KAFKA_OFFSET_FIELD', default: DEFAULT_KAFKA_COORDINATE_FIELDS.offset, description: "… its offset (offset.field)" },
  'updated-at': { type: 'string', env: 'TASTE_BACKFILL_UPDATED_AT', default: 'last-event', description: 'what upd is stamped with: last-event (deterministic), now, or a time' },
  'min-event-time': { type: 'string', env: 'TASTE_BACKFILL_MIN_EVENT_TIME', default: '2005-01-01T00:00:00Z', description: 'oldest event time accepted (older events are invalid)' },
  'errors-shown': { type: 'integer', env: 'TASTE_BACKFILL_ERRORS_SHOWN', default: 100, description: 'bad records printed (all are counted)' },
  ...backfillKafkaFlags,
  ...redisFlags,
  ...modelFlags,
  ...logFlags,
} as const satisfies FlagSpecs;

export const backfillHelp = `${formatHelp(
  'taste backfill [options] <file|directory|glob>...\n       taste backfill --kafka [--since T] [--until T] [options]',
  [
    "Rebuilds users' state and embeddings from history through the stream's updater: JSONL (plain, or gzip: .jsonl.gz)",
    'or Parquet files of play and search events (docs/backfill.md), or a time range of the Kafka topics. Writes the',
    "keys of the --model version, so a new model's keys can be filled while the current one is served. Re-running is",
    'idempotent; with --checkpoint a killed run continues where it stopped. Bad records are reported (file:line) and',
    'skipped.',
    'With --shard I/N (or --shards N in an Indexed Job) N processes split the work, each with its own checkpoint;',
    'together they write the same bytes as one unsharded run.',
  ].join('\n'),
  flags,
)}

Exit status: 0 done, 1 error or --fail-fast stop, 2 bad usage, 130 interrupted (resume with the same --checkpoint).
Examples:
  taste backfill --model models/next --checkpoint next.ckpt 'archive/2025-*/*.parquet' recent.jsonl
  taste backfill --checkpoint logs.ckpt 'logs/2026-11-*.jsonl.gz'
  taste backfill --kafka --since 2026-10-27T00:00:00Z --shard 1/4 --checkpoint shard-1.ckpt`;

export async function runBackfillCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help, positionals: inputs } = parseFlags(flags, argv, env, { positionals: true });
  if (help) {
    console.log(backfillHelp);
    return 0;
  }
  const sinceMs = values.since === undefined ? undefined : parseTime(values.since, '--since');
  const untilMs = values.until === undefined ? undefined : parseTime(values.until, '--until');
  if (sinceMs !== undefined && untilMs !== undefined && untilMs <= sinceMs) throw new UsageError('--until must be later than --since');
  const users = await userFilter(values.user, values['users-file']);
  const updatedAt = parseUpdatedAt(values['updated-at']);
  const minEventTimeMs = parseTime(values['min-event-time'], '--min-event-time');
  const shard = shardOption(values.shard, values.shards, env.JOB_COMPLETION_INDEX);

  let input: BackfillInput;
  if (values.kafka) {
    if (inputs.length > 0) throw new UsageError(`--kafka reads the topics: give no files (got ${inputs[0]})`);
    if (values['kafka-coordinates'] !== 'none') throw new UsageError('--kafka-coordinates is for files (--kafka records have their coordinates)');
    if (values['group-by-user']) throw new UsageError('--group-by-user is for files: a Kafka range is read partition by partition, each user in one partition');
    input = { kind: 'kafka', kafka: kafkaOptions(values as unknown as FlagValues<typeof kafkaFlags>, 'taste-backfill'), topics: { play: values['plays-topic'], search: values['searches-topic'] } };
  } else {
    if (inputs.length === 0) throw new UsageError('give the files, directories or globs to read, or --kafka');
    const format = values.format === 'auto' ? undefined : (values.format as FileFormat);
    input = { kind: 'files', paths: inputs, format, identity: values['file-identity'] as FileIdentity, kafkaCoordinates: kafkaCoordinatesOption(values) };
  }

  const logger = createLogger(values['log-level'] as LogLevel, { component: 'backfill', ...(shard ? { shard: formatShard(shard) } : {}) });
  if (env.JOB_COMPLETION_INDEX !== undefined && env.JOB_COMPLETION_INDEX !== '' && shard === undefined) {
    logger.warn('JOB_COMPLETION_INDEX is set but no --shards / --shard: this process backfills the whole input');
  }
  const stopping = new AbortController();
  const shutdown = new ShutdownSignal((message) => logger.info(`${message} (after the step in progress; its checkpoint is kept)`));
  void shutdown.requested.then(() => stopping.abort());
  const progress = new ProgressDisplay({ write: (text) => process.stderr.write(text), tty: process.stderr.isTTY === true, logger, columns: process.stderr.columns ?? 100 });
  let shown = 0;
  const errorsShown = values['errors-shown'];
  const summary = await runBackfillJob({
    input,
    modelDir: values.model,
    redis: redisOptions(values, 'taste-backfill'),
    keyPrefix: values['key-prefix'],
    executionProvider: values['execution-provider'] as ExecutionProviderChoice,
    inferenceWorkers: values['inference-workers'],
    ...(values['intra-op-threads'] > 0 ? { intraOpThreads: values['intra-op-threads'] } : {}),
    inferenceTimeoutMs: values['inference-timeout-ms'],
    sinceMs,
    untilMs,
    users,
    shard,
    minEventTimeMs,
    updatedAt,
    batchSize: values['batch-size'],
    concurrency: values.concurrency,
    chunkSize: values['chunk-size'],
    groupByUser: values['group-by-user']
      ? { memoryLimit: values['group-memory'], ...(values['group-temp-dir'] ? { tempDirectory: values['group-temp-dir'] } : {}) }
      : undefined,
    checkpointPath: values.checkpoint,
    failFast: values['fail-fast'],
    dryRun: values['dry-run'],
    signal: stopping.signal,
    logger,
    onProgress: (state) => progress.update(state),
    onInvalid: (bad) => {
      if (shown < errorsShown) {
        progress.end();
        process.stderr.write(`taste backfill: bad record ${bad.where}: ${bad.reason}: ${bad.detail}\n`);
      } else if (shown === errorsShown) {
        process.stderr.write(`taste backfill: more bad records are counted but not shown (--errors-shown ${errorsShown})\n`);
      }
      shown++;
    },
  });
  progress.end();
  console.log(formatSummary(summary, values['dry-run']));
  if (summary.stoppedBy === StopReasons.BAD_RECORD) return 1;
  if (summary.stoppedBy === StopReasons.SIGNAL) return 130;
  return 0;
}

/**
 * The shard from `--shard I/N`, or from `--shards N` with the index of a Kubernetes Indexed Job's
 * pod (JOB_COMPLETION_INDEX); undefined when neither flag is given (unsharded).
 */
export function shardOption(spec: string | undefined, count: number | undefined, completionIndex: string | undefined): Shard | undefined {
  if (spec === undefined) {
    if (count === undefined) return undefined;
    if (completionIndex === undefined || completionIndex === '') {
      throw new UsageError(`--shards ${count} needs this process's shard index: give --shard I/${count}, or run it as a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)`);
    }
    if (!/^\d+$/.test(completionIndex)) throw new UsageError(`JOB_COMPLETION_INDEX must be a whole number (the pod's index), got "${completionIndex}"`);
    return checkedShard({ index: Number(completionIndex), count }, `JOB_COMPLETION_INDEX ${completionIndex} with --shards ${count}`);
  }
  const match = /^(\d+)\/(\d+)$/.exec(spec.trim());
  if (!match) throw new UsageError(`--shard must be I/N, the 0-based shard index and the shard count (e.g. 0/4), got "${spec}"`);
  const shard = { index: Number(match[1]), count: Number(match[2]) };
  if (count !== undefined && count !== shard.count) throw new UsageError(`--shard ${spec} and --shards ${count} disagree on the shard count`);
  return checkedShard(shard, `--shard ${spec}`);
}

function checkedShard(shard: Shard, given: string): Shard {
  if (shard.count < 1) throw new UsageError(`${given}: the shard count must be at least 1`);
  if (shard.index >= shard.count) throw new UsageError(`${given}: the shard index must be below the count (0-based: 0..${shard.count - 1})`);
  return shard;
}

/** Files whose records carry Kafka coordinates: the fields, and the stream's topics they must name. */
function kafkaCoordinatesOption(values: FlagValues<typeof flags>): KafkaCoordinatesOptions | undefined {
  if (values['kafka-coordinates'] === 'none') return undefined;
  if (values.since !== undefined || values.until !== undefined) {
    throw new UsageError(
      "--kafka-coordinates fields does not take --since/--until: the events share the stream's marks, and one left out by time before an applied one of its partition would count as applied. Give the files of the period",
    );
  }
  const fields = { topic: values['kafka-topic-field'], partition: values['kafka-partition-field'], offset: values['kafka-offset-field'] };
  const names = Object.values(fields);
  if (new Set(names).size !== names.length || names.some((name) => name === '' || name === 'type')) {
    throw new UsageError(`--kafka-topic-field, --kafka-partition-field and --kafka-offset-field must be three different names other than "type" (got ${names.join(', ')})`);
  }
  return { fields, topics: { play: values['plays-topic'], search: values['searches-topic'] } };
}

function parseUpdatedAt(text: string): UpdatedAt {
  if (text === 'last-event' || text === 'now') return text;
  try {
    return parseTime(text, '--updated-at');
  } catch {
    throw new UsageError(`--updated-at must be last-event, now, or a time (ISO 8601 or ms), got "${text}"`);
  }
}

async function userFilter(flagValues: readonly string[], usersFile: string | undefined): Promise<Set<string> | undefined> {
  const users = flagValues.flatMap((value) => value.split(',')).map((user) => user.trim()).filter(Boolean);
  if (usersFile !== undefined) {
    let text;
    try {
      text = await readFile(usersFile, 'utf8');
    } catch (error) {
      throw new UsageError(`--users-file ${usersFile}: ${(error as Error).message}`);
    }
    // One push per line: a spread of a file's lines (a cohort of millions) would overflow the call stack.
    for (const line of text.split(/\r?\n/)) {
      const user = line.trim();
      if (user !== '' && !user.startsWith('#')) users.push(user);
    }
  }
  if (flagValues.length === 0 && usersFile === undefined) return undefined;
  const invalid = users.find((user) => !isValidUserId(user));
  if (invalid !== undefined) throw new UsageError(`"${invalid}" is not a valid user id (1-128 characters of [A-Za-z0-9._:@+=-])`);
  if (users.length === 0) throw new UsageError('--user / --users-file name no user');
  return new Set(users);
}
