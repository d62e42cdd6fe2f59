import { type Admin, type Consumer, Kafka, type KafkaConfig, logLevel, Partitioners, type Producer, type ProducerConfig, type SASLOptions } from 'kafkajs';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { sleep } from '../common/retry.js';

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
  const config: KafkaConfig = {
    clientId: options.clientId ?? 'taste',
    brokers: options.brokers,
    ssl: options.tlsCa ? { ca: [options.tlsCa] } : (options.ssl ?? false),
    connectionTimeout: options.connectionTimeoutMs ?? 10_000,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...fields } = entry.log;
      const log = entry.level <= logLevel.ERROR ? logger.error : logger.warn;
      log(`kafka: ${message}`, { namespace: entry.namespace, ...fields });
    },
  };
  if (options.sasl) config.sasl = options.sasl as SASLOptions;
  return new Kafka(config);
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
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((spec) => !existing.has(spec.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((spec) => ({ topic: spec.topic, numPartitions: spec.partitions, replicationFactor: -1 })),
      });
    }
    await waitForLeaders(admin, topics.map((spec) => spec.topic), options.timeoutMs ?? 30_000);
  } finally {
    await admin.disconnect();
  }
}

async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no metadata yet';
  for (;;) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
      const leaderless = metadata.filter(({ partitions }) => partitions.length === 0 || partitions.some(({ leader }) => leader < 0));
      if (leaderless.length === 0) return;
      lastProblem = `no leader yet for ${leaderless.map(({ name }) => name).join(', ')}`;
    } catch (error) {
      // kafkajs' error classes cannot be imported by name from ESM; every one carries `retriable`.
      if ((error as { retriable?: unknown }).retriable !== true) throw error;
      lastProblem = (error as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new TasteError(ErrorCodes.KAFKA, `topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms: ${lastProblem}`, { canRetry: true });
    }
    await sleep(100);
  }
}

/**
 * How many records of `topics` the group has not committed yet, summed over partitions (a
 * partition the group never committed counts from its start). The group commits after the write,
 * so 0 means every produced record is in the feature store.
 */
export async function consumerGroupLag(kafka: Kafka, groupId: string, topics: readonly string[]): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    let lag = 0;
    const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
    for (const { topic, partitions } of committed) {
      const ends = new Map((await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => [partition, Number(high)]));
      for (const { partition, offset } of partitions) lag += (ends.get(partition) ?? 0) - Math.max(0, Number(offset));
    }
    return lag;
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

export type { Consumer, Kafka, Producer };
