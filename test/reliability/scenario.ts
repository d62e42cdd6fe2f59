import type { ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { InferencePool } from '../../model/inference-pool.js';
import { loadModelBundle, type ModelBundle } from '../../model/model-bundle.js';
import { createKafka, createProducer, type Kafka } from '../../consumers/kafka.js';
import { sendErasureRequests } from '../../consumers/erasure-requests.js';
import type { ErasureRequest } from '../../events/erasure-request.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import { DEFAULT_MODEL_DIR, KAFKA_BROKERS, REDIS_URL } from '../helpers/environment.js';
import { testKafka, testLogger, uniqueTopics } from '../helpers/pipeline.js';
import {
  assertExactlyOnce,
  ConsumerProcess,
  consumerArgs,
  type Expectation,
  groundTruth,
  produceStream,
  report,
  simulatedUserIds,
  type StreamSpec,
  type Verdict,
  verify,
  VersionWatcher,
  waitForLagZero,
} from './harness.js';

export interface ScenarioOptions {
  /** The events the scenario streams; production starts with the scenario. */
  stream: StreamSpec;
  /** @default REDIS_URL (the shared test Redis) */
  redisUrl?: string;
  /** @default KAFKA_BROKERS (the shared test broker) */
  brokers?: string[];
}

/** What production sent and the ground truth read back from the topics once it was done. */
export interface Produced {
  sent: { records: number; poison: number };
  truth: { users: Map<string, Expectation>; valid: number; invalid: number };
}

/**
 * One fault-injection scenario: its own topics, consumer group and key prefix, the model, a
 * verifier's view of the store, and the events streamed into the topics from the moment it
 * starts. The steps every scenario shares are methods, so a test reads as its faults:
 * start, (watch versions,) run consumers, inject faults, drain, verify, report.
 */
export class Scenario {
  readonly topics: StreamTopics & { erasure: string };
  readonly groupId: string;
  readonly keyPrefix: string;
  readonly store: FeatureStore;
  /** Set by watchVersions(). */
  watcher: VersionWatcher | undefined;
  readonly #t: ExecutionContext;
  readonly #brokers: string[];
  readonly #redisUrl: string;
  readonly #production: Promise<Produced['sent']>;
  readonly #consumers: ConsumerProcess[] = [];
  #produced: Promise<Produced> | undefined;
  #erasuresSent = false;

  private constructor(
    t: ExecutionContext,
    readonly options: ScenarioOptions,
    readonly kafka: Kafka,
    readonly bundle: ModelBundle,
    readonly pool: InferencePool,
    readonly redis: RedisClient,
  ) {
    this.#t = t;
    this.#brokers = options.brokers ?? KAFKA_BROKERS;
    this.#redisUrl = options.redisUrl ?? REDIS_URL;
    const topics = uniqueTopics();
    this.topics = { ...topics, erasure: `${topics.play}.erasures` };
    const id = randomUUID().slice(0, 8);
    this.keyPrefix = `rel-${id}`;
    this.groupId = `rel-group-${id}`;
    this.store = new FeatureStore({
      redis,
      modelVersion: bundle.metadata.modelVersion,
      queryTokens: bundle.metadata.queryTokens,
      keyPrefix: this.keyPrefix,
      ...(bundle.metadata.stateful ? { stateDim: bundle.metadata.stateful.stateDim } : {}),
    });
    // Production runs through the faults, as in real life; produced() waits for it.
    this.#production = produceStream(kafka, this.topics, options.stream);
  }

  /** Loads the model, connects to Redis and starts producing; closes all of it when the test ends. */
  static async start(t: ExecutionContext, options: ScenarioOptions): Promise<Scenario> {
    const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
    const pool = await InferencePool.start({ bundle, intraOpThreads: 1 });
    const redis = createRedisClient({ url: options.redisUrl ?? REDIS_URL, commandTimeoutMs: 5000 });
    redis.on('error', () => undefined);
    t.teardown(async () => {
      await pool.close();
      redis.disconnect();
    });
    await waitForRedis(redis);
    const kafka = options.brokers ? createKafka({ brokers: options.brokers, clientId: 'taste-test' }, testLogger) : testKafka();
    return new Scenario(t, options, kafka, bundle, pool, redis);
  }

  /** Polls the first 100 simulated users' state versions and records any that goes back. */
  watchVersions(): VersionWatcher {
    this.watcher = new VersionWatcher(this.store, simulatedUserIds(this.options.stream).slice(0, 100));
    this.watcher.start();
    return this.watcher;
  }

  /** Once production is done: what it sent, and the ground truth read back from the topics. */
  produced(): Promise<Produced> {
    this.#produced ??= (async () => {
      const sent = await this.#production;
      const truth = await groundTruth(this.kafka, this.topics, this.bundle);
      return { sent, truth };
    })();
    return this.#produced;
  }

  /** The `taste consume` arguments for this scenario's topics, group, key prefix and model. */
  consumerArgs(extra: string[] = []): string[] {
    return consumerArgs(this.topics, this.groupId, this.keyPrefix, extra);
  }

  /** A `taste consume` process against this scenario's broker and Redis; killed if the test ends first. */
  consumer(args: string[] = this.consumerArgs(), env: NodeJS.ProcessEnv = {}): ConsumerProcess {
    const consumer = new ConsumerProcess(args, { TASTE_KAFKA_BROKERS: this.#brokers.join(','), TASTE_REDIS_URL: this.#redisUrl, ...env });
    this.#t.teardown(() => consumer.kill('SIGKILL'));
    this.#consumers.push(consumer);
    return consumer;
  }

  /** Waits until the group has consumed both event topics to the end (and the erasure topic, once a request was sent). */
  drained(timeoutMs?: number): Promise<{ lag: number; ms: number }> {
    const erasures = this.#erasuresSent ? [this.topics.erasure] : [];
    return waitForLagZero(this.kafka, this.groupId, [this.topics.play, this.topics.search, ...erasures], timeoutMs);
  }

  /** Sends erasure requests to the scenario's erasure topic (acknowledged by all in-sync replicas). */
  async erase(requests: readonly ErasureRequest[]): Promise<void> {
    const producer = createProducer(this.kafka, { idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await sendErasureRequests(producer, this.topics.erasure, requests);
      this.#erasuresSent = true;
    } finally {
      await producer.disconnect();
    }
  }

  /** Stops the version watcher and compares the store with the ground truth. */
  async verify(): Promise<Verdict> {
    this.watcher?.stop();
    const { truth } = await this.produced();
    return verify(this.store, truth.users, this.pool);
  }

  /** Prints the scenario's row of the closing table. */
  async report(row: { scenario: string; faults: string; verdict: Verdict; recoveryMs: number }): Promise<void> {
    const { sent } = await this.produced();
    report({ ...row, events: sent.records, regressions: this.watcher?.regressions.length ?? 0 });
  }

  /** Drained, nothing lost or applied twice, no watched version went back, same state as a clean run. */
  assertExactlyOnce(lag: number, verdict: Verdict): void {
    assertExactlyOnce(this.#t, { lag, verdict, regressions: this.watcher?.regressions ?? [], consumers: this.#consumers });
  }
}
