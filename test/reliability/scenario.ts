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
  sleep,
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
  /** Shadow models the consumers run beside the primary (`--shadow-model`), each checked as a version of its own. @default none */
  shadowModelDirs?: readonly string[];
}

/** One model version of a scenario: the model, a pool that recomputes its embeddings, and its view of the store. */
export interface ScenarioModel {
  bundle: ModelBundle;
  pool: InferencePool;
  store: FeatureStore;
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
  /** The shadow models (options.shadowModelDirs), in that order. */
  readonly shadows: ScenarioModel[];
  /** The primary's watcher; set by watchVersions(). */
  watcher: VersionWatcher | undefined;
  /** One per model version, by version; set by watchVersions(). */
  readonly #watchers = new Map<string, VersionWatcher>();
  readonly #t: ExecutionContext;
  readonly #brokers: string[];
  readonly #redisUrl: string;
  readonly #production: Promise<Produced['sent']>;
  readonly #consumers: ConsumerProcess[] = [];
  #produced: Promise<Produced> | undefined;
  /** The ground truth of each shadow (its own vocabulary and query features), by version. */
  readonly #shadowTruths = new Map<string, Promise<Produced['truth']>>();
  #erasuresSent = false;

  private constructor(
    t: ExecutionContext,
    readonly options: ScenarioOptions,
    readonly kafka: Kafka,
    readonly bundle: ModelBundle,
    readonly pool: InferencePool,
    readonly redis: RedisClient,
    shadows: readonly { bundle: ModelBundle; pool: InferencePool }[],
  ) {
    this.#t = t;
    this.#brokers = options.brokers ?? KAFKA_BROKERS;
    this.#redisUrl = options.redisUrl ?? REDIS_URL;
    const topics = uniqueTopics();
    this.topics = { ...topics, erasure: `${topics.play}.erasures` };
    const id = randomUUID().slice(0, 8);
    this.keyPrefix = `rel-${id}`;
    this.groupId = `rel-group-${id}`;
    const storeOf = (model: ModelBundle) =>
      new FeatureStore({
        redis,
        modelVersion: model.metadata.modelVersion,
        queryTokens: model.metadata.queryTokens,
        keyPrefix: this.keyPrefix,
        ...(model.metadata.stateful ? { stateDim: model.metadata.stateful.stateDim } : {}),
      });
    this.store = storeOf(bundle);
    this.shadows = shadows.map((shadow) => ({ ...shadow, store: storeOf(shadow.bundle) }));
    // Production runs through the faults, as in real life; produced() waits for it.
    this.#production = produceStream(kafka, this.topics, options.stream);
  }

  /** Loads the model, connects to Redis and starts producing; closes all of it when the test ends. */
  static async start(t: ExecutionContext, options: ScenarioOptions): Promise<Scenario> {
    const pools: InferencePool[] = [];
    const redis = createRedisClient({ url: options.redisUrl ?? REDIS_URL, commandTimeoutMs: 5000 });
    redis.on('error', () => undefined);
    t.teardown(async () => {
      await Promise.all(pools.map((pool) => pool.close()));
      redis.disconnect();
    });
    const open = async (directory: string) => {
      const bundle = await loadModelBundle(directory);
      const pool = await InferencePool.start({ bundle, intraOpThreads: 1 });
      pools.push(pool);
      return { bundle, pool };
    };
    const primary = await open(DEFAULT_MODEL_DIR);
    const shadows = [];
    for (const directory of options.shadowModelDirs ?? []) shadows.push(await open(directory));
    await waitForRedis(redis);
    const kafka = options.brokers ? createKafka({ brokers: options.brokers, clientId: 'taste-test' }, testLogger) : testKafka();
    return new Scenario(t, options, kafka, primary.bundle, primary.pool, redis, shadows);
  }

  /** The primary, then the shadows: every model version the consumers write. */
  get models(): ScenarioModel[] {
    return [{ bundle: this.bundle, pool: this.pool, store: this.store }, ...this.shadows];
  }

  /** For each model version, polls the first 100 simulated users' state versions and records any that goes back. Returns the primary's watcher. */
  watchVersions(): VersionWatcher {
    const userIds = simulatedUserIds(this.options.stream).slice(0, 100);
    for (const { store } of this.models) {
      const watcher = new VersionWatcher(store, userIds);
      watcher.start();
      this.#watchers.set(store.modelVersion, watcher);
    }
    this.watcher = this.#watchers.get(this.store.modelVersion);
    return this.watcher!;
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

  /** The `taste consume` arguments for this scenario's topics, group, key prefix and models. */
  consumerArgs(extra: string[] = []): string[] {
    const shadows = (this.options.shadowModelDirs ?? []).flatMap((directory) => ['--shadow-model', directory]);
    return consumerArgs(this.topics, this.groupId, this.keyPrefix, [...shadows, ...extra]);
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

  /**
   * Stops the version watchers and compares one model version's keys (the primary's unless
   * `model` is given) with the ground truth featurized for that model.
   */
  async verify(model?: ScenarioModel): Promise<Verdict> {
    for (const watcher of this.#watchers.values()) watcher.stop();
    if (model === undefined || model.store.modelVersion === this.store.modelVersion) {
      const { truth } = await this.produced();
      return verify(this.store, truth.users, this.pool);
    }
    const version = model.store.modelVersion;
    if (!this.#shadowTruths.has(version)) {
      this.#shadowTruths.set(version, this.produced().then(() => groundTruth(this.kafka, this.topics, model.bundle)));
    }
    const truth = await this.#shadowTruths.get(version)!;
    return verify(model.store, truth.users, model.pool);
  }

  /** Prints the scenario's row of the closing table (of `model`'s version: the primary's unless given). */
  async report(row: { scenario: string; faults: string; verdict: Verdict; recoveryMs: number }, model?: ScenarioModel): Promise<void> {
    const { sent } = await this.produced();
    const watcher = this.#watchers.get(model?.store.modelVersion ?? this.store.modelVersion);
    report({ ...row, events: sent.records, regressions: watcher?.regressions.length ?? 0 });
  }

  /** Drained, nothing lost or applied twice, no watched version went back, same state as a clean run: of `model`'s version (default the primary's). */
  assertExactlyOnce(lag: number, verdict: Verdict, model?: ScenarioModel): void {
    const modelVersion = model?.store.modelVersion ?? this.store.modelVersion;
    const regressions = this.#watchers.get(modelVersion)?.regressions ?? [];
    assertExactlyOnce(this.#t, { lag, verdict, regressions, consumers: this.#consumers, ...(model ? { modelVersion } : {}) });
  }

  /**
   * The kill -9 scenarios' run: once per moment a consumer with `args`, killed -9 that many ms
   * after it started; then, production done, a last consumer that drains the group and is stopped
   * with SIGTERM. Returns what was produced, the lag and time to drain, and the last consumer's exit.
   */
  async killEachThenDrain(
    args: string[],
    moments: readonly number[],
  ): Promise<Produced & { lag: number; recoveryMs: number; last: ConsumerProcess; exit: { code: number | null; signal: NodeJS.Signals | null } }> {
    for (const moment of moments) {
      const consumer = this.consumer(args);
      await consumer.waitStarted();
      // Kill at a random moment of its work: mid-step, between the Redis write and the commit, or idle.
      await sleep(moment);
      consumer.kill('SIGKILL');
      await consumer.exited;
    }
    const produced = await this.produced();
    const last = this.consumer(args);
    const { lag, ms: recoveryMs } = await this.drained();
    await last.waitStarted();
    last.kill('SIGTERM');
    return { ...produced, lag, recoveryMs, last, exit: await last.exited };
  }
}
