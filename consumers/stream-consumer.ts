import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import { createProducer } from './kafka.js';
import { describeError, isRetryable } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { withRetry } from '../common/retry.js';
import type { Updater, UpdateSummary } from '../updater/updater.js';
import type { SourcedEvent } from '../events/window-event.js';
import { type DeadLetter, DeadLetterWriter } from './dead-letter.js';
import type { EventFeaturizer } from '../events/featurizer.js';
import { type EventType, EventTypes } from '../events/event-record.js';

export interface StreamTopics {
  play: string;
  search: string;
  deadLetter: string;
}

export interface StreamConsumerOptions {
  kafka: Kafka;
  topics: StreamTopics;
  updater: Updater;
  featurizer: EventFeaturizer;
  logger: Logger;
  /** @default 'taste' */
  groupId?: string;
  /** Messages applied per step within a fetched batch; offsets are committed after each step. @default 500 */
  chunkSize?: number;
  /** @default 2 */
  partitionsConsumedConcurrently?: number;
  /** @default 30000 */
  sessionTimeoutMs?: number;
  /** Longest a resolved offset waits to be committed (committed offsets bound the replay after a crash). @default 1000 */
  autoCommitIntervalMs?: number;
  /** Where a new consumer group starts. @default true */
  fromBeginning?: boolean;
  /** Told about every committed step (metrics). */
  observer?: StreamConsumerObserver;
  /** Called after each applied step (demo output). */
  onApplied?: (summary: UpdateSummary, messages: number) => void;
}

/** What the consumer reports; metrics/ turns it into Prometheus metrics. */
export interface StreamConsumerObserver {
  /** After each step is applied and its offsets resolved. */
  onStep?(step: ConsumerStep): void;
}

/** One step: a chunk of one partition's batch, applied, with what was refused dead-lettered. */
export interface ConsumerStep {
  topic: string;
  partition: number;
  /** Records read in the step. */
  records: number;
  /** Records behind the end of the partition after the step (0 at the end). */
  lag: number;
  summary: UpdateSummary;
  /** Records the step sent to the dead-letter topic: refused by the featurizer or the updater. */
  deadLetters: readonly DeadLetter[];
}

export interface StreamConsumerStats {
  messages: number;
  applied: number;
  duplicates: number;
  deadLettered: number;
  steps: number;
  /** Times this member joined the group: 1 without rebalances. */
  groupJoins: number;
}

/**
 * The consumer group on the play and search topics. Per step: decode and validate (refused →
 * dead-letter topic), apply through the updater (read, merge, one inference per user,
 * compare-and-set write), then resolve and commit the offsets: an offset is committed only once
 * its effect is in Redis, so a crash anywhere replays, and the updater drops what was applied.
 */
export class StreamConsumer {
  readonly #options: StreamConsumerOptions;
  readonly #consumer: Consumer;
  readonly #producer: Producer;
  readonly #deadLetters: DeadLetterWriter;
  readonly #stopping = new AbortController();
  readonly #typeByTopic: Map<string, EventType>;
  #joined: Promise<void>;
  readonly stats: StreamConsumerStats = { messages: 0, applied: 0, duplicates: 0, deadLettered: 0, steps: 0, groupJoins: 0 };

  constructor(options: StreamConsumerOptions) {
    this.#options = options;
    const { kafka, topics } = options;
    this.#consumer = kafka.consumer({
      groupId: options.groupId ?? 'taste',
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: 1_048_576,
    });
    this.#producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
    this.#deadLetters = new DeadLetterWriter(this.#producer, topics.deadLetter);
    this.#typeByTopic = new Map([
      [topics.play, EventTypes.PLAY],
      [topics.search, EventTypes.SEARCH],
    ]);
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => {
      this.stats.groupJoins++;
    });
    this.#joined = new Promise((resolve) => {
      const remove = this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => {
        remove();
        resolve();
      });
    });
  }

  /** Resolves once this member has joined the group and received its first assignment. */
  get joined(): Promise<void> {
    return this.#joined;
  }

  async start(): Promise<void> {
    const { topics } = this.#options;
    await this.#producer.connect();
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [topics.play, topics.search], fromBeginning: this.#options.fromBeginning ?? true });
    await this.#consumer.run({
      autoCommit: true,
      autoCommitInterval: this.#options.autoCommitIntervalMs ?? 1_000,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#options.partitionsConsumedConcurrently ?? 2,
      eachBatch: (payload) => this.#handleBatch(payload),
    });
  }

  /** Finishes or abandons the step in flight (uncommitted work is replayed later), then leaves the group. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#consumer.disconnect();
    await this.#producer.disconnect();
  }

  async #handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, isRunning, isStale } = payload;
    const type = this.#typeByTopic.get(batch.topic);
    if (!type) return;
    const chunkSize = this.#options.chunkSize ?? 500;
    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!isRunning() || isStale() || this.#stopping.signal.aborted) return;
      await this.#step(type, batch.messages.slice(start, start + chunkSize), payload);
    }
  }

  /** Featurize, apply, dead-letter what was refused, then resolve and commit the offsets. */
  async #step(type: EventType, chunk: Message[], payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { events, deadLetters } = this.#featurize(type, batch, chunk);
    const summary = await this.#apply(events, payload);
    deadLetters.push(...refusedByUpdater(summary, batch, chunk));
    await this.#deadLetters.send(deadLetters);
    if (summary.corruptStates.length > 0) {
      this.#options.logger.warn('stored state could not be decoded; started over from these events', {
        users: summary.corruptStates.slice(0, 10),
        count: summary.corruptStates.length,
      });
    }

    const last = chunk[chunk.length - 1]!;
    payload.resolveOffset(last.offset);
    await payload.heartbeat();
    await payload.commitOffsetsIfNecessary();

    this.stats.messages += chunk.length;
    this.stats.applied += summary.applied;
    this.stats.duplicates += summary.duplicates;
    this.stats.deadLettered += deadLetters.length;
    this.stats.steps++;
    const lag = Math.max(0, Number(batch.highWatermark) - 1 - Number(last.offset));
    this.#options.observer?.onStep?.({ topic: batch.topic, partition: batch.partition, records: chunk.length, lag, summary, deadLetters });
    this.#options.onApplied?.(summary, chunk.length);
  }

  /** Decodes and validates each record: events to apply, and dead letters for the refused. */
  #featurize(type: EventType, batch: Batch, chunk: Message[]): { events: SourcedEvent[]; deadLetters: DeadLetter[] } {
    const events: SourcedEvent[] = [];
    const deadLetters: DeadLetter[] = [];
    const now = Date.now();
    for (const message of chunk) {
      const raw = { topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value };
      const result = this.#options.featurizer.featurize(type, raw, now);
      if (result.ok) events.push(result.event);
      else deadLetters.push({ ...raw, timestamp: message.timestamp, rejection: result.rejection });
    }
    return { events, deadLetters };
  }

  /** Applies through the updater, retrying retryable failures for as long as this member owns the partition. */
  async #apply(events: SourcedEvent[], { batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<UpdateSummary> {
    // Inference or a Redis outage can outlast the session timeout: keep heartbeating while the
    // step runs, so a slow step is not mistaken for a dead member (kafkajs throttles the calls).
    const beat = setInterval(() => heartbeat().catch(() => undefined), 1_000);
    try {
      return await withRetry(() => this.#options.updater.apply(events), {
        attempts: Number.POSITIVE_INFINITY,
        maxDelayMs: 5_000,
        signal: this.#stopping.signal,
        shouldRetry: (error) => isRetryable(error) && isRunning() && !isStale(),
        onRetry: async (error, attempt, delayMs) => {
          this.#options.logger.warn('apply failed; retrying (offsets stay uncommitted)', {
            topic: batch.topic,
            partition: batch.partition,
            attempt,
            delayMs,
            error: describeError(error),
          });
          await heartbeat().catch(() => undefined);
        },
      });
    } finally {
      clearInterval(beat);
    }
  }
}

type Batch = EachBatchPayload['batch'];
type Message = Batch['messages'][number];

/** Dead letters for the events the updater refused, each carrying its original record. */
function refusedByUpdater(summary: UpdateSummary, batch: Batch, chunk: readonly Message[]): DeadLetter[] {
  const deadLetters: DeadLetter[] = [];
  for (const rejected of summary.rejected) {
    for (const sourced of rejected.events) {
      const message = chunk.find((candidate) => Number(candidate.offset) === sourced.event.offset);
      if (!message) continue;
      deadLetters.push({
        topic: batch.topic,
        partition: batch.partition,
        offset: message.offset,
        key: message.key,
        value: message.value,
        timestamp: message.timestamp,
        rejection: { reason: rejected.reason, detail: rejected.detail },
      });
    }
  }
  return deadLetters;
}
