import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { EventFeaturizer } from '../events/featurizer.js';
import { type EventType, EventTypes } from '../events/event-record.js';
import type { SourceCursor, SourceReader, SourceRecord } from './source.js';

/** One topic-partition's offsets [from, to) — what a Kafka backfill reads, one range after the other. */
export interface KafkaRange {
  topic: string;
  partition: number;
  from: number;
  to: number;
}

export interface KafkaRangeTopics {
  play: string;
  search: string;
}

/**
 * The offsets of every partition of both topics between two record timestamps (Kafka's
 * ListOffsets by time: the first offset whose timestamp is ≥ the time; the log end when none is).
 * No `since`: the log start; no `until`: the log end now, so records produced meanwhile are left to
 * the stream. Empty ranges are dropped; the order (plays, then searches, by partition) is the
 * reading order.
 */
export async function resolveKafkaRanges(kafka: Kafka, topics: KafkaRangeTopics, sinceMs?: number, untilMs?: number): Promise<KafkaRange[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const ranges: KafkaRange[] = [];
    for (const topic of [topics.play, topics.search]) {
      if (!existing.has(topic)) throw new TasteError(ErrorCodes.KAFKA, `topic "${topic}" does not exist (see --plays-topic / --searches-topic)`);
      const bounds = await admin.fetchTopicOffsets(topic);
      const starts = sinceMs === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(topic, sinceMs);
      const ends = untilMs === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(topic, untilMs);
      for (const bound of [...bounds].sort((a, b) => a.partition - b.partition)) {
        const low = Number(bound.low);
        const high = Number(bound.high);
        const start = Number(starts?.find((entry) => entry.partition === bound.partition)?.offset ?? low);
        const end = Number(ends?.find((entry) => entry.partition === bound.partition)?.offset ?? high);
        const from = Math.max(low, start);
        const to = Math.min(high, end);
        if (to > from) ranges.push({ topic, partition: bound.partition, from, to });
      }
    }
    return ranges;
  } catch (error) {
    if (error instanceof TasteError) throw error;
    throw new TasteError(ErrorCodes.KAFKA, `could not look up the offsets of the Kafka range: ${(error as Error).message}`, { cause: error, canRetry: true });
  } finally {
    await admin.disconnect();
  }
}

interface Current {
  range: KafkaRange;
  /** Next offset wanted. */
  next: number;
  queue: EachBatchPayload['batch']['messages'][];
  done: boolean;
  wake: (() => void) | undefined;
  drained: (() => void) | undefined;
}

export interface KafkaRangeReaderOptions {
  kafka: Kafka;
  topics: KafkaRangeTopics;
  featurizer: EventFeaturizer;
  logger: Logger;
  /** Keep only these users (by message key, before decoding). */
  users?: ReadonlySet<string> | undefined;
  nowMs: number;
  /** Most bytes fetched per partition at once. @default 1048576 */
  maxBytesPerPartition?: number;
}

/**
 * Reads Kafka ranges one at a time, in offset order, with one consumer in a throwaway group that
 * never commits (so the stream's group is untouched): every partition paused but the one being
 * read, `seek` to where reading starts, stop at the range's end. The fetch handler awaits the
 * backfill (heartbeating), so nothing is fetched faster than it is applied.
 */
export class KafkaRangeReader {
  readonly #options: KafkaRangeReaderOptions;
  readonly #consumer: Consumer;
  readonly #typeByTopic: Map<string, EventType>;
  #current: Current | undefined;
  #running = false;

  constructor(options: KafkaRangeReaderOptions) {
    this.#options = options;
    this.#consumer = options.kafka.consumer({
      groupId: `taste-backfill-${randomUUID()}`,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
      maxWaitTimeInMs: 250,
    });
    this.#typeByTopic = new Map([
      [options.topics.play, EventTypes.PLAY],
      [options.topics.search, EventTypes.SEARCH],
    ]);
  }

  async start(): Promise<void> {
    const { topics } = this.#options;
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [topics.play, topics.search], fromBeginning: true });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#onBatch(payload),
    });
    this.#running = true;
    this.#pauseAll();
  }

  async close(): Promise<void> {
    this.#running = false;
    const current = this.#current;
    if (current) {
      current.done = true;
      current.drained?.();
      current.wake?.();
    }
    await this.#consumer.disconnect();
  }

  source(range: KafkaRange): SourceReader {
    const reader = this;
    const label = `${range.topic}[${range.partition}]`;
    return {
      label,
      start: { at: range.from - 1, next: range.from },
      units: range.to - range.from,
      unitsDone: (cursor: SourceCursor) => cursor.next - range.from,
      locate: (at: number) => `${label}@${at}`,
      read: (from: SourceCursor) => reader.#read(range, from.next),
    };
  }

  #pauseAll(): void {
    const { topics } = this.#options;
    this.#consumer.pause([{ topic: topics.play }, { topic: topics.search }]);
  }

  async *#read(range: KafkaRange, from: number): AsyncGenerator<SourceRecord[]> {
    if (!this.#running) throw new TasteError(ErrorCodes.KAFKA, 'the Kafka range reader is not started');
    if (from >= range.to) return;
    const current: Current = { range, next: from, queue: [], done: false, wake: undefined, drained: undefined };
    this.#current = current;
    this.#consumer.seek({ topic: range.topic, partition: range.partition, offset: String(from) });
    this.#consumer.resume([{ topic: range.topic, partitions: [range.partition] }]);
    const type = this.#typeByTopic.get(range.topic)!;
    const { featurizer, users, nowMs } = this.#options;
    try {
      for (;;) {
        const messages = current.queue.shift();
        if (!messages) {
          if (current.done) break;
          await new Promise<void>((resolve) => (current.wake = resolve));
          current.wake = undefined;
          continue;
        }
        if (current.queue.length === 0) current.drained?.();
        const records: SourceRecord[] = [];
        for (const message of messages) {
          const offset = Number(message.offset);
          if (users !== undefined && !users.has(message.key?.toString('utf8') ?? '')) {
            records.push({ at: offset, next: offset + 1, outcome: { type: 'filtered' } });
            continue;
          }
          const raw = { topic: range.topic, partition: range.partition, offset: message.offset, key: message.key, value: message.value };
          const result = featurizer.featurize(type, raw, nowMs);
          records.push({
            at: offset,
            next: offset + 1,
            outcome: result.ok ? { type: 'event', event: result.event } : { type: 'invalid', reason: result.rejection.reason, detail: result.rejection.detail },
          });
        }
        yield records;
      }
      if (!this.#running) throw new TasteError(ErrorCodes.KAFKA, `stopped while reading ${range.topic}[${range.partition}]`);
    } finally {
      this.#current = undefined;
      current.drained?.();
      if (this.#running) this.#pauseAll();
    }
  }

  async #onBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    const current = this.#current;
    if (!current || current.done || batch.topic !== current.range.topic || batch.partition !== current.range.partition) return;
    // Moves the consumer's fetch position past this batch (nothing is committed: autoCommit is off).
    if (batch.messages.length > 0) resolveOffset(batch.lastOffset());
    const { to } = current.range;
    const wanted = batch.messages.filter((message) => {
      const offset = Number(message.offset);
      return offset >= current.next && offset < to;
    });
    const first = wanted[0];
    if (first && Number(first.offset) > current.next) {
      this.#options.logger.warn('offsets missing from the Kafka range (deleted by retention or compaction)', {
        topic: batch.topic,
        partition: batch.partition,
        from: current.next,
        to: Number(first.offset),
      });
    }
    const last = wanted[wanted.length - 1];
    if (last) {
      current.next = Number(last.offset) + 1;
      current.queue.push(wanted);
    }
    if (current.next >= to || Number(batch.lastOffset()) >= to - 1) current.done = true;
    current.wake?.();
    // Backpressure: hold this fetch until the backfill has taken what it got, heartbeating meanwhile.
    while (current.queue.length > 0 && this.#current === current && isRunning() && !isStale()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1_000);
        current.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      current.drained = undefined;
      await heartbeat().catch(() => undefined);
    }
  }
}
