import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { EventFeaturizer } from '../events/featurizer.js';
import { type EventType, EventTypes } from '../events/event-record.js';
import { fetchPartitionOffsets, type Kafka } from '../consumers/kafka.js';
import { OffsetRangeReader, type RangeRecord } from '../consumers/offset-range-reader.js';
import { checkShardablePartitions, ownsPartition, type Shard } from './shard.js';
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
 * reading order. With a shard, only the partitions it owns (`ownsPartition`), and only where that
 * keeps each user in one shard (`checkShardablePartitions`).
 */
export async function resolveKafkaRanges(kafka: Kafka, topics: KafkaRangeTopics, sinceMs?: number, untilMs?: number, shard?: Shard): Promise<KafkaRange[]> {
  const offsets = await fetchPartitionOffsets(kafka, [topics.play, topics.search], { sinceMs, untilMs });
  const ranges: KafkaRange[] = [];
  const partitionCounts = new Map<string, number>();
  for (const topic of [topics.play, topics.search]) {
    const partitions = offsets.get(topic);
    if (!partitions) throw new TasteError(ErrorCodes.KAFKA, `topic "${topic}" does not exist (see --plays-topic / --searches-topic)`);
    partitionCounts.set(topic, partitions.length);
    for (const { partition, low, high, atSince, atUntil } of partitions) {
      if (shard && !ownsPartition(shard, partition)) continue;
      const from = Math.max(low, atSince ?? low);
      const to = Math.min(high, atUntil ?? high);
      if (to > from) ranges.push({ topic, partition, from, to });
    }
  }
  if (shard) checkShardablePartitions(shard, partitionCounts);
  return ranges;
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
 * Kafka ranges as backfill sources: the records of each range, read in offset order by one
 * OffsetRangeReader (consumers/: a throwaway group that never commits, so the stream's group is
 * untouched, and fetches held until the backfill has applied what came before), filtered by user
 * and featurized exactly as the stream featurizes them.
 */
export class KafkaRangeReader {
  readonly #options: KafkaRangeReaderOptions;
  readonly #reader: OffsetRangeReader;
  readonly #typeByTopic: Map<string, EventType>;

  constructor(options: KafkaRangeReaderOptions) {
    this.#options = options;
    this.#reader = new OffsetRangeReader({
      kafka: options.kafka,
      topics: [options.topics.play, options.topics.search],
      logger: options.logger,
      maxBytesPerPartition: options.maxBytesPerPartition,
    });
    this.#typeByTopic = new Map([
      [options.topics.play, EventTypes.PLAY],
      [options.topics.search, EventTypes.SEARCH],
    ]);
  }

  start(): Promise<void> {
    return this.#reader.start();
  }

  close(): Promise<void> {
    return this.#reader.close();
  }

  source(range: KafkaRange): SourceReader {
    const label = `${range.topic}[${range.partition}]`;
    return {
      label,
      start: { at: range.from - 1, next: range.from },
      units: range.to - range.from,
      unitsDone: (cursor: SourceCursor) => cursor.next - range.from,
      locate: (at: number) => `${label}@${at}`,
      read: (from: SourceCursor) => this.#read(range, from.next),
    };
  }

  async *#read(range: KafkaRange, from: number): AsyncGenerator<SourceRecord[]> {
    for await (const batch of this.#reader.read(range.topic, range.partition, from, range.to)) {
      yield batch.map((record) => this.#toSourceRecord(range, record));
    }
  }

  #toSourceRecord(range: KafkaRange, { offset, key, value }: RangeRecord): SourceRecord {
    const { featurizer, users, nowMs } = this.#options;
    if (users !== undefined && !users.has(key?.toString('utf8') ?? '')) return { at: offset, next: offset + 1, outcome: { type: 'filtered' } };
    const type = this.#typeByTopic.get(range.topic)!;
    const result = featurizer.featurize(type, { topic: range.topic, partition: range.partition, offset: String(offset), key, value }, nowMs);
    return {
      at: offset,
      next: offset + 1,
      outcome: result.ok ? { type: 'event', event: result.event } : { type: 'invalid', reason: result.rejection.reason, detail: result.rejection.detail },
    };
  }
}
