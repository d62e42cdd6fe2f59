import { randomUUID } from 'node:crypto';
import { type Admin, type ConfigResourceTypes, type Consumer, Kafka, type KafkaConfig, type LogEntry, logLevel, Partitioners, type Producer, type ProducerConfig, type SASLOptions } from 'kafkajs';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { pollUntil } from '../common/poll.js';
import { applyKafkajsIdleFix } from './kafkajs-idle-fix.js';

// The only module that builds kafkajs clients; the rest of the code sees these options only.

export interface KafkaConnectionOptions {
  /** host:port list. */
  brokers: string[];
  /** @default 'taste' */
  clientId?: string;
  /** TLS to the brokers. @default false */
  ssl?: boolean;
  /** PEM of the CA that signed the brokers' certificates (implies TLS); default: Node's trusted CAs. */
  tlsCa?: string;
  /** SASL PLAIN / SCRAM credentials. */
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** @default 10000 */
  connectionTimeoutMs?: number;
}

export function createKafka(options: KafkaConnectionOptions, logger: Logger): Kafka {
  applyKafkajsIdleFix();
  const config: KafkaConfig = {
    clientId: options.clientId ?? 'taste',
    brokers: options.brokers,
    ssl: options.tlsCa ? { ca: [options.tlsCa] } : (options.ssl ?? false),
    connectionTimeout: options.connectionTimeoutMs ?? 10_000,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...fields } = entry.log;
      const log = kafkaLogSeverity(entry) === 'error' ? logger.error : logger.warn;
      log(`kafka: ${message}`, { namespace: entry.namespace, ...fields });
    },
  };
  if (options.sasl) config.sasl = options.sasl as SASLOptions;
  return new Kafka(config);
}

/**
 * How loud a kafkajs log line is in our logs. kafkajs logs at error level what it is about to retry:
 * every failed connect and every error response of a request (the connection logs them before its
 * caller decides; "The coordinator is loading" on a fresh broker is one) and every failed attempt
 * of a retry loop. Those
 * are warnings here: what kafkajs finally gives up on reaches us as a thrown error or a crash, which
 * stay errors, so a first-time user is not shown a retried moment as a failure.
 */
export function kafkaLogSeverity(entry: Pick<LogEntry, 'level' | 'namespace' | 'log'>): 'error' | 'warn' {
  if (entry.level > logLevel.ERROR) return 'warn';
  const { message } = entry.log;
  if (message.startsWith('Crash')) return 'error';
  // A connection reports each failed connect and each error response; its caller retries or raises.
  if (entry.namespace === 'Connection') return 'warn';
  const fields = entry.log as Record<string, unknown>;
  if (fields['retryCount'] !== undefined || fields['retryTime'] !== undefined) return 'warn';
  return 'error';
}

export interface TopicSpec {
  topic: string;
  partitions: number;
}

/**
 * Creates the topics that don't exist yet (existing ones are left as they are) and returns once
 * every partition of every topic has a leader.
 *
 * kafkajs' own `waitForLeaders` gives up on the first UNKNOWN_TOPIC_OR_PARTITION, which a KRaft
 * broker answers for a moment after creating a topic; so the wait is done here, treating any
 * retriable answer as "not yet". Another process creating the same topic at the same time is fine.
 */
export async function ensureTopics(kafka: Kafka, topics: readonly TopicSpec[], options: { timeoutMs?: number } = {}): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((spec) => !existing.has(spec.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((spec) => ({ topic: spec.topic, numPartitions: spec.partitions, replicationFactor: -1 })),
      });
    }
    await waitForLeaders(admin, topics.map((spec) => spec.topic), options.timeoutMs ?? 30_000);
  } catch (error) {
    throw kafkaError(`could not create the topics ${topics.map((spec) => spec.topic).join(', ')}`, error);
  } finally {
    await admin.disconnect();
  }
}

async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  let lastProblem = 'no metadata yet';
  await pollUntil(
    async () => {
      try {
        const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
        const leaderless = metadata.filter(({ partitions }) => partitions.length === 0 || partitions.some(({ leader }) => leader < 0));
        if (leaderless.length === 0) return true;
        lastProblem = `no leader yet for ${leaderless.map(({ name }) => name).join(', ')}`;
      } catch (error) {
        if (!isRetriableKafkaError(error)) throw kafkaError(`could not read the metadata of ${topics.join(', ')}`, error);
        lastProblem = (error as Error).message;
      }
      return undefined;
    },
    { what: () => `leaders for topics ${topics.join(', ')} (${lastProblem})`, timeoutMs, intervalMs: 100, code: ErrorCodes.KAFKA },
  );
}

/** kafkajs' ConfigResourceTypes.TOPIC: its enums, like its error classes, cannot be imported by name from ESM. */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

/**
 * The longest `retention.ms` among `topics`: how long an event can stay on them. Undefined when
 * one of them keeps records forever (-1), or compacts instead of deleting.
 */
export async function longestRetentionMs(kafka: Kafka, topics: readonly string[]): Promise<number | undefined> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: TOPIC_RESOURCE, name, configNames: ['retention.ms', 'cleanup.policy'] })),
    });
    let longest = 0;
    for (const { resourceName, configEntries } of resources) {
      const value = (name: string) => configEntries.find((entry) => entry.configName === name)?.configValue;
      if (value('cleanup.policy')?.includes('compact')) return undefined;
      const retention = Number(value('retention.ms'));
      if (!Number.isSafeInteger(retention)) throw new TasteError(ErrorCodes.KAFKA, `topic ${resourceName} has no readable retention.ms ("${value('retention.ms')}")`);
      if (retention < 0) return undefined;
      longest = Math.max(longest, retention);
    }
    return longest;
  } catch (error) {
    if (error instanceof TasteError) throw error;
    throw kafkaError(`could not read the retention of ${topics.join(', ')}`, error, { canRetry: true });
  } finally {
    await admin.disconnect();
  }
}

/**
 * How many records of `topics` the group has not committed yet, summed over partitions (a
 * partition the group never committed counts from its start). The group commits after the write,
 * so 0 means every produced record is in the feature store.
 */
export async function consumerGroupLag(kafka: Kafka, groupId: string, topics: readonly string[]): Promise<number> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    let lag = 0;
    const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
    for (const { topic, partitions } of committed) {
      const ends = new Map((await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => [partition, Number(high)]));
      for (const { partition, offset } of partitions) lag += (ends.get(partition) ?? 0) - Math.max(0, Number(offset));
    }
    return lag;
  } catch (error) {
    throw kafkaError(`could not read the lag of consumer group ${groupId}`, error);
  } finally {
    await admin.disconnect();
  }
}

/**
 * A producer that partitions by key with Java-client-compatible murmur2, so our records land in
 * the same partition as records from any other standard Kafka producer keyed by the same user.
 */
export function createProducer(kafka: Kafka, config: Omit<ProducerConfig, 'createPartitioner'> = {}): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, ...config, createPartitioner: Partitioners.DefaultPartitioner });
}

/**
 * A consumer for reading offset ranges (consumers/offset-range-reader.ts): a throwaway group of its
 * own, which the reader never commits, so no other group's offsets move.
 */
export function createRangeConsumer(kafka: Kafka, options: { maxBytesPerPartition?: number } = {}): Consumer {
  return kafka.consumer({
    groupId: `taste-backfill-${randomUUID()}`,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    allowAutoTopicCreation: false,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
    maxWaitTimeInMs: 250,
  });
}

/** One partition's offsets: the log's bounds and, when asked for, the offsets at two record times. */
export interface PartitionOffsets {
  partition: number;
  /** The log start, and the log end (the offset the next record will get). */
  low: number;
  high: number;
  /** The first offset whose record timestamp is ≥ `sinceMs` (the log end when none is); absent without `sinceMs`. */
  atSince?: number;
  /** The same for `untilMs`. */
  atUntil?: number;
}

/**
 * Every partition's offsets of each topic (by partition number), with Kafka's ListOffsets by time
 * for `sinceMs` and `untilMs` when given; `undefined` for a topic that does not exist.
 */
export async function fetchPartitionOffsets(
  kafka: Kafka,
  topics: readonly string[],
  times: { sinceMs?: number | undefined; untilMs?: number | undefined } = {},
): Promise<Map<string, PartitionOffsets[] | undefined>> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const offsets = new Map<string, PartitionOffsets[] | undefined>();
    for (const topic of topics) {
      if (!existing.has(topic)) {
        offsets.set(topic, undefined);
        continue;
      }
      const bounds = await admin.fetchTopicOffsets(topic);
      const atSince = times.sinceMs === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(topic, times.sinceMs);
      const atUntil = times.untilMs === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(topic, times.untilMs);
      const offsetAt = (list: typeof atSince, partition: number): number | undefined => {
        const entry = list?.find((candidate) => candidate.partition === partition);
        return entry === undefined ? undefined : Number(entry.offset);
      };
      const partitions = [...bounds].sort((a, b) => a.partition - b.partition);
      offsets.set(
        topic,
        partitions.map(({ partition, low, high }): PartitionOffsets => {
          const since = offsetAt(atSince, partition);
          const until = offsetAt(atUntil, partition);
          return {
            partition,
            low: Number(low),
            high: Number(high),
            ...(since === undefined ? {} : { atSince: since }),
            ...(until === undefined ? {} : { atUntil: until }),
          };
        }),
      );
    }
    return offsets;
  } catch (error) {
    throw kafkaError(`could not look up the offsets of ${topics.join(', ')}`, error, { canRetry: true });
  } finally {
    await admin.disconnect();
  }
}

/** kafkajs' error classes cannot be imported by name from ESM; every one carries `retriable`. */
function isRetriableKafkaError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

/**
 * A kafkajs error as a TasteError (code KAFKA), for the edge of this folder: `canRetry` is what
 * kafkajs says of the error unless the caller knows better. A TasteError passes through unchanged.
 */
export function kafkaError(message: string, error: unknown, options: { canRetry?: boolean } = {}): TasteError {
  if (error instanceof TasteError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new TasteError(ErrorCodes.KAFKA, `${message}: ${detail}`, { cause: error, canRetry: options.canRetry ?? isRetriableKafkaError(error) });
}

export type { Consumer, Kafka, Producer };
