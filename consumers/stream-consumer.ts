import type { Consumer, ConsumerConfig, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import { createProducer } from './kafka.js';
import { describeError, isRetryable } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { sleep, withRetry } from '../common/retry.js';
import type { Updater, UpdateSummary } from '../updater/updater.js';
import type { SourcedEvent } from '../events/window-event.js';
import { type DeadLetter, DeadLetterWriter } from './dead-letter.js';
import type { EventFeaturizer } from '../events/featurizer.js';
import { type EventType, EventTypes } from '../events/event-record.js';
import { type ErasureRequest, parseErasureRequest } from '../events/erasure-request.js';
import { defaultValidationLimits } from '../events/validation.js';
import { type ErasureResult, ErasureOutcomes, type EraseOptions } from '../featurestore/feature-store.js';

export interface StreamTopics {
  play: string;
  search: string;
  deadLetter: string;
  /** Erasure requests (docs/erasure.md); the stream job consumes it when set. */
  erasure?: string;
}

/** What applies erasure requests: the feature store (FeatureStore.erase). */
export interface Eraser {
  erase(requests: readonly ErasureRequest[], options?: EraseOptions): Promise<ErasureResult[]>;
}

/** The erasure topic, consumed beside the events (docs/erasure.md). */
export interface ErasureConsumption {
  topic: string;
  eraser: Eraser;
  /** How long a tombstone outlives its request time; undefined: forever. */
  tombstoneLifetimeMs?: number;
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
  /** Erasure requests: consumed, applied and committed like events when set. */
  erasure?: ErasureConsumption;
  /** Called after each applied step (demo output). */
  onApplied?: (summary: UpdateSummary, messages: number) => void;
  /**
   * Longest the kafkajs consumer may go without a sign of life (a fetch, a batch, a group join)
   * outside a step's apply, which has timeouts and retries of its own. Past it the consumer is
   * taken for stalled and replaced. Idle partitions still fetch every 5 s, and a rebalance takes
   * at most kafkajs's rebalance timeout (60 s), so the default leaves room for both. @default 120000
   */
  stallTimeoutMs?: number;
  /** Test seam: how the kafkajs consumer is made. @default kafka.consumer(config) */
  createConsumer?: (kafka: Kafka, config: ConsumerConfig) => Consumer;
}

/** What the consumer reports; metrics/ turns it into Prometheus metrics. */
export interface StreamConsumerObserver {
  /** After each step is applied and its offsets resolved. */
  onStep?(step: ConsumerStep): void;
  /** This member holds partitions (true, after each group join) or has lost its consumer until a replacement joins (false). */
  onMembership?(member: boolean): void;
  /** The kafkajs consumer was replaced: it crashed and kafkajs would not restart it, or it stalled. */
  onReplaced?(reason: ConsumerReplacement): void;
  /** After each step of the erasure topic is applied and its offsets resolved. */
  onErasureStep?(step: ErasureStep): void;
  /** A shadow model was suspended: its inference failed a step past its retries (docs/rollout.md). */
  onShadowSuspended?(modelVersion: string, reason: string): void;
}

/** One step of the erasure topic: its requests applied, the malformed ones dead-lettered. */
export interface ErasureStep {
  topic: string;
  partition: number;
  records: number;
  /** Records behind the end of the partition after the step. */
  lag: number;
  /** Users whose keys were deleted and tombstone set. */
  erased: number;
  /** Requests that changed nothing: a tombstone at or after their time was there (a redelivery, an older request). */
  alreadyErased: number;
  deadLetters: readonly DeadLetter[];
}

/** Why the kafkajs consumer was replaced. */
export const ConsumerReplacements = {
  /** kafkajs gave up on an error it does not retry (its consumer stays stopped otherwise). */
  CRASHED: 'crashed',
  /** No fetch, batch or group join for longer than the stall timeout. */
  STALLED: 'stalled',
} as const;
export type ConsumerReplacement = (typeof ConsumerReplacements)[keyof typeof ConsumerReplacements];

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
  /** Times the kafkajs consumer was replaced after a crash kafkajs would not restart, or a stall. */
  replacements: number;
  /** Erasure requests that deleted a user's keys. */
  erased: number;
}

/**
 * The consumer group on the play and search topics. Per step: decode and validate (refused →
 * dead-letter topic), apply through the updater (read, merge, one inference per user,
 * compare-and-set write), then resolve and commit the offsets: an offset is committed only once
 * its effect is in Redis, so a crash anywhere replays, and the updater drops what was applied.
 */
export class StreamConsumer {
  readonly #options: StreamConsumerOptions;
  #consumer: Consumer;
  readonly #producer: Producer;
  readonly #deadLetters: DeadLetterWriter;
  readonly #stopping = new AbortController();
  readonly #typeByTopic: Map<string, EventType>;
  #joined: Promise<void>;
  readonly stats: StreamConsumerStats = { messages: 0, applied: 0, duplicates: 0, deadLettered: 0, steps: 0, groupJoins: 0, replacements: 0, erased: 0 };
  /** When the kafkajs consumer last showed it was alive (performance.now()). */
  #lastSignOfLife = performance.now();
  /** Applies in flight: their time is not a stall (they have timeouts and retries, and log them). */
  #applying = 0;
  #replacing: Promise<void> | undefined;
  /** Replacements since the last step that went through: each waits longer, so a crash loop does not spin. */
  #replacementsInARow = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #resolveJoined!: () => void;

  constructor(options: StreamConsumerOptions) {
    this.#options = options;
    const { kafka, topics } = options;
    this.#producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
    this.#deadLetters = new DeadLetterWriter(this.#producer, topics.deadLetter);
    this.#typeByTopic = new Map([
      [topics.play, EventTypes.PLAY],
      [topics.search, EventTypes.SEARCH],
    ]);
    this.#joined = new Promise((resolve) => {
      this.#resolveJoined = resolve;
    });
    this.#consumer = this.#createConsumer();
  }

  /** A kafkajs consumer with this member's settings, its events wired to the stats, the observer and the watchdog. */
  #createConsumer(): Consumer {
    const options = this.#options;
    const config: ConsumerConfig = {
      groupId: options.groupId ?? 'taste',
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: 1_048_576,
    };
    const consumer = options.createConsumer?.(options.kafka, config) ?? options.kafka.consumer(config);
    const alive = () => {
      if (consumer === this.#consumer) this.#lastSignOfLife = performance.now();
    };
    consumer.on(consumer.events.FETCH_START, alive);
    consumer.on(consumer.events.FETCH, alive);
    consumer.on(consumer.events.START_BATCH_PROCESS, alive);
    consumer.on(consumer.events.END_BATCH_PROCESS, alive);
    consumer.on(consumer.events.GROUP_JOIN, () => {
      alive();
      this.stats.groupJoins++;
      this.#resolveJoined();
      this.#options.observer?.onMembership?.(true);
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (consumer !== this.#consumer || this.#stopping.signal.aborted) return;
      this.#options.observer?.onMembership?.(false);
      // kafkajs restarts itself after errors it deems retriable; after any other (a TypeError
      // anywhere in the step, a protocol error it does not retry) its consumer stays stopped for
      // good while the process lives on: the partitions would stall without a word.
      if (payload.restart) {
        alive();
        return;
      }
      this.#replace(ConsumerReplacements.CRASHED, describeError(payload.error));
    });
    return consumer;
  }

  /** Resolves once this member has joined the group and received its first assignment. */
  get joined(): Promise<void> {
    return this.#joined;
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    await this.#run(this.#consumer);
    const stallTimeoutMs = this.#options.stallTimeoutMs ?? 120_000;
    this.#lastSignOfLife = performance.now();
    this.#watchdog = setInterval(() => {
      if (this.#applying > 0 || this.#replacing) return;
      const silentMs = performance.now() - this.#lastSignOfLife;
      if (silentMs > stallTimeoutMs) this.#replace(ConsumerReplacements.STALLED, `no fetch, batch or group join for ${Math.round(silentMs)} ms`);
    }, Math.min(5_000, Math.max(100, stallTimeoutMs / 4)));
    this.#watchdog.unref();
  }

  async #run(consumer: Consumer): Promise<void> {
    const { topics } = this.#options;
    await consumer.connect();
    const erasureTopics = this.#options.erasure ? [this.#options.erasure.topic] : [];
    await consumer.subscribe({ topics: [topics.play, topics.search, ...erasureTopics], fromBeginning: this.#options.fromBeginning ?? true });
    await consumer.run({
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
    clearInterval(this.#watchdog);
    await this.#replacing;
    await this.#consumer.disconnect();
    await this.#producer.disconnect();
  }

  /**
   * Drops the kafkajs consumer and starts a new one in the same group, until one runs. What the old
   * one had fetched but not committed is fetched again, and the updater drops what was applied.
   */
  #replace(reason: ConsumerReplacement, detail: string): void {
    if (this.#replacing || this.#stopping.signal.aborted) return;
    this.stats.replacements++;
    const backoffMs = Math.min(30_000, 1_000 * 2 ** this.#replacementsInARow) - 1_000;
    this.#replacementsInARow++;
    this.#options.observer?.onReplaced?.(reason);
    this.#options.observer?.onMembership?.(false);
    this.#options.logger.error('kafka consumer replaced: kafkajs would not have resumed it', { reason, detail, inMs: backoffMs });
    this.#replacing = (async () => {
      const old = this.#consumer;
      await old.disconnect().catch(() => undefined);
      await sleep(backoffMs, this.#stopping.signal);
      await withRetry(
        async () => {
          const replacement = this.#createConsumer();
          this.#consumer = replacement;
          this.#lastSignOfLife = performance.now();
          try {
            await this.#run(replacement);
          } catch (error) {
            await replacement.disconnect().catch(() => undefined);
            throw error;
          }
        },
        {
          attempts: Number.POSITIVE_INFINITY,
          maxDelayMs: 10_000,
          signal: this.#stopping.signal,
          shouldRetry: () => !this.#stopping.signal.aborted,
          onRetry: (error, attempt, delayMs) => {
            this.#options.logger.warn('kafka consumer replacement failed to start; trying again', { attempt, delayMs, error: describeError(error) });
          },
        },
      ).catch(() => undefined); // only a stop ends the retries
    })().finally(() => {
      this.#replacing = undefined;
      this.#lastSignOfLife = performance.now();
    });
  }

  async #handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, isRunning, isStale } = payload;
    const erasure = this.#options.erasure;
    const type = this.#typeByTopic.get(batch.topic);
    if (!type && batch.topic !== erasure?.topic) return;
    const chunkSize = this.#options.chunkSize ?? 500;
    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!isRunning() || isStale() || this.#stopping.signal.aborted) return;
      const chunk = batch.messages.slice(start, start + chunkSize);
      if (type) await this.#step(type, chunk, payload);
      else await this.#eraseStep(erasure!, chunk, payload);
    }
  }

  /** Parse the requests (malformed → dead-letter topic), apply them, then resolve and commit the offsets. */
  async #eraseStep(erasure: ErasureConsumption, chunk: Message[], payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const requests: ErasureRequest[] = [];
    const deadLetters: DeadLetter[] = [];
    const now = Date.now();
    for (const message of chunk) {
      const parsed = parseErasureRequest(message.key, message.value, now, defaultValidationLimits);
      if (parsed.ok) requests.push(parsed.request);
      else {
        deadLetters.push({ topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value, timestamp: message.timestamp, rejection: parsed.rejection });
      }
    }
    const lifetime = erasure.tombstoneLifetimeMs === undefined ? {} : { tombstoneLifetimeMs: erasure.tombstoneLifetimeMs };
    const results = requests.length === 0 ? [] : await this.#retrying(() => erasure.eraser.erase(requests, lifetime), payload);
    await this.#deadLetters.send(deadLetters);
    // The audit trail: request ids and outcomes, never a user's events.
    results.forEach((result, index) => {
      const { requestId, requestTimeMs } = requests[index]!;
      this.#options.logger.info('erasure applied', { requestId, requestTimeMs, outcome: result.outcome, keysDeleted: result.keysDeleted });
    });
    for (const letter of deadLetters) {
      this.#options.logger.warn('erasure request refused (dead-lettered)', { partition: letter.partition, offset: letter.offset, reason: letter.rejection.reason });
    }

    const last = chunk[chunk.length - 1]!;
    payload.resolveOffset(last.offset);
    await payload.heartbeat();
    await payload.commitOffsetsIfNecessary();

    const erased = results.filter((result) => result.outcome === ErasureOutcomes.ERASED).length;
    this.stats.messages += chunk.length;
    this.stats.erased += erased;
    this.stats.deadLettered += deadLetters.length;
    this.stats.steps++;
    this.#replacementsInARow = 0;
    const lag = Math.max(0, Number(batch.highWatermark) - 1 - Number(last.offset));
    this.#options.observer?.onErasureStep?.({ topic: batch.topic, partition: batch.partition, records: chunk.length, lag, erased, alreadyErased: results.length - erased, deadLetters });
  }

  /** Featurize, apply, dead-letter what was refused, then resolve and commit the offsets. */
  async #step(type: EventType, chunk: Message[], payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { events, deadLetters } = this.#featurize(type, batch, chunk);
    const summary = await this.#apply(events, payload);
    for (const refused of refusedByUpdater(summary, batch, chunk)) deadLetters.push(refused);
    await this.#deadLetters.send(deadLetters);
    for (const shadow of summary.shadows) {
      if (shadow.suspendedNow === undefined) continue;
      this.#options.logger.error('shadow model suspended: its inference failed; the primary goes on, the shadow is no longer written (rebuild it by backfill before switching to it)', {
        shadow: shadow.modelVersion,
        reason: shadow.suspendedNow,
      });
      this.#options.observer?.onShadowSuspended?.(shadow.modelVersion, shadow.suspendedNow);
    }
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
    this.#replacementsInARow = 0;
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
  async #apply(events: SourcedEvent[], payload: EachBatchPayload): Promise<UpdateSummary> {
    return this.#retrying(() => this.#options.updater.apply(events), payload);
  }

  /** Runs a step's work, retrying retryable failures for as long as this member owns the partition. */
  async #retrying<T>(work: () => Promise<T>, { batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<T> {
    // Inference or a Redis outage can outlast the session timeout: keep heartbeating while the
    // step runs, so a slow step is not mistaken for a dead member (kafkajs throttles the calls).
    const beat = setInterval(() => heartbeat().catch(() => undefined), 1_000);
    this.#applying++;
    try {
      return await withRetry(work, {
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
      this.#applying--;
      this.#lastSignOfLife = performance.now();
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
