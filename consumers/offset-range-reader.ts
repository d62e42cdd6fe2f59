import type { Consumer, EachBatchPayload } from 'kafkajs';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { createRangeConsumer, fetchPartitionOffsets, type Kafka, kafkaError } from './kafka.js';

/** A record as the range reader hands it on: kafkajs' message, reduced to what a reader needs. */
export interface RangeRecord {
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
}

/** The range being read: the next offset wanted, what was fetched and not yet taken, and who waits on whom. */
interface Current {
  topic: string;
  partition: number;
  to: number;
  next: number;
  queue: RangeRecord[][];
  done: boolean;
  wake: (() => void) | undefined;
  drained: (() => void) | undefined;
}

export interface OffsetRangeReaderOptions {
  kafka: Kafka;
  /** Every topic a range may be read from (all subscribed, all paused between ranges). */
  topics: readonly string[];
  logger: Logger;
  /** Most bytes fetched per partition at once. @default 1048576 */
  maxBytesPerPartition?: number | undefined;
  /**
   * How long a read waits for a fetch before it asks the broker whether the rest of its range can
   * still come. kafkajs hands on no empty fetch, so a range whose records were deleted (retention,
   * DeleteRecords) in a partition with nothing written after them would otherwise wait forever.
   * @default 5000
   */
  idleCheckMs?: number | undefined;
}

const DEFAULT_IDLE_CHECK_MS = 5_000;

/**
 * Reads offset ranges of topic-partitions, one at a time and in offset order, with one consumer
 * (createRangeConsumer: a throwaway group that never commits, so no group's offsets move): every
 * partition paused but the one being read, `seek` to where reading starts, stop at the range's end.
 * The fetch handler holds each batch until the reader has taken it (heartbeating meanwhile), so
 * nothing is fetched faster than it is used.
 */
export class OffsetRangeReader {
  readonly #consumer: Consumer;
  readonly #topics: readonly string[];
  readonly #logger: Logger;
  readonly #kafka: Kafka;
  readonly #idleCheckMs: number;
  #current: Current | undefined;
  #running = false;

  constructor(options: OffsetRangeReaderOptions) {
    this.#consumer = createRangeConsumer(options.kafka, options.maxBytesPerPartition === undefined ? {} : { maxBytesPerPartition: options.maxBytesPerPartition });
    this.#topics = [...options.topics];
    this.#logger = options.logger;
    this.#kafka = options.kafka;
    this.#idleCheckMs = options.idleCheckMs ?? DEFAULT_IDLE_CHECK_MS;
  }

  async start(): Promise<void> {
    try {
      await this.#consumer.connect();
      await this.#consumer.subscribe({ topics: [...this.#topics], fromBeginning: true });
      await this.#consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.#onBatch(payload),
      });
    } catch (error) {
      throw kafkaError(`could not start the Kafka range reader on ${this.#topics.join(', ')}`, error);
    }
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

  /** The records of `topic[partition]` in [from, to), one fetched batch at a time; offsets lost to retention or compaction are skipped (and logged). */
  async *read(topic: string, partition: number, from: number, to: number): AsyncGenerator<RangeRecord[]> {
    if (!this.#running) throw new TasteError(ErrorCodes.KAFKA, 'the Kafka range reader is not started');
    if (from >= to) return;
    const current: Current = { topic, partition, to, next: from, queue: [], done: false, wake: undefined, drained: undefined };
    this.#current = current;
    this.#consumer.seek({ topic, partition, offset: String(from) });
    this.#consumer.resume([{ topic, partitions: [partition] }]);
    try {
      for (;;) {
        const records = current.queue.shift();
        if (!records) {
          if (current.done) break;
          let timer: NodeJS.Timeout | undefined;
          const woken = await new Promise<boolean>((resolve) => {
            current.wake = () => resolve(true);
            timer = setTimeout(() => resolve(false), this.#idleCheckMs);
          });
          clearTimeout(timer);
          current.wake = undefined;
          if (!woken && !current.done && current.queue.length === 0) await this.#endIfUnreadable(current);
          continue;
        }
        if (current.queue.length === 0) current.drained?.();
        yield records;
      }
      if (!this.#running) throw new TasteError(ErrorCodes.KAFKA, `stopped while reading ${topic}[${partition}]`);
    } finally {
      this.#current = undefined;
      current.drained?.();
      if (this.#running) this.#pauseAll();
    }
  }

  /**
   * Ends the range when no record of its rest can come any more: the partition's log now starts at
   * or after the range's end (deleted by retention or DeleteRecords), or ends before the next offset
   * wanted (truncated). Both are logged, as skipped offsets are. A failed lookup is retried at the
   * next idle check.
   */
  async #endIfUnreadable(current: Current): Promise<void> {
    let bounds: { low: number; high: number } | undefined;
    try {
      bounds = (await fetchPartitionOffsets(this.#kafka, [current.topic])).get(current.topic)?.find((p) => p.partition === current.partition);
    } catch (error) {
      this.#logger.warn('could not check the Kafka range is still readable; waiting on', { topic: current.topic, partition: current.partition, error: (error as Error).message });
      return;
    }
    if (!bounds) throw new TasteError(ErrorCodes.KAFKA, `${current.topic}[${current.partition}] no longer exists: its range from offset ${current.next} cannot be read`);
    if (current.done || current.queue.length > 0) return;
    const range = { topic: current.topic, partition: current.partition, from: current.next, to: current.to, logStart: bounds.low, logEnd: bounds.high };
    if (bounds.low >= current.to) {
      this.#logger.warn('offsets missing from the Kafka range (deleted by retention or compaction)', range);
    } else if (bounds.high <= current.next) {
      this.#logger.warn('offsets missing from the Kafka range (the partition was truncated below them)', range);
    } else {
      return;
    }
    current.done = true;
  }

  #pauseAll(): void {
    this.#consumer.pause(this.#topics.map((topic) => ({ topic })));
  }

  async #onBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    const current = this.#current;
    if (!current || current.done || batch.topic !== current.topic || batch.partition !== current.partition) return;
    // Moves the consumer's fetch position past this batch (nothing is committed: autoCommit is off).
    if (batch.messages.length > 0) resolveOffset(batch.lastOffset());
    const { to } = current;
    const wanted: RangeRecord[] = [];
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (offset >= current.next && offset < to) wanted.push({ offset, key: message.key, value: message.value });
    }
    const first = wanted[0];
    if (first && first.offset > current.next) {
      this.#logger.warn('offsets missing from the Kafka range (deleted by retention or compaction)', {
        topic: batch.topic,
        partition: batch.partition,
        from: current.next,
        to: first.offset,
      });
    }
    const last = wanted[wanted.length - 1];
    if (last) {
      current.next = last.offset + 1;
      current.queue.push(wanted);
    }
    if (current.next >= to || Number(batch.lastOffset()) >= to - 1) current.done = true;
    current.wake?.();
    // Backpressure: hold this fetch until the reader has taken what it got, heartbeating meanwhile.
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
