import type { ExecutionContext } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPollTimeout, pollUntil } from '../../common/poll.js';
import { consumerGroupLag, createProducer, ensureTopics, type Kafka } from '../../consumers/kafka.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import type { FeatureStore } from '../../featurestore/feature-store.js';
import type { WindowEvent } from '../../events/window-event.js';
import { StatefulAdvancer } from '../../updater/advance.js';
import { DEFAULT_MODEL_DIR } from '../helpers/environment.js';
import { oracleModel, oracleTruth } from './oracle.js';
import type { InferencePool } from '../../model/inference-pool.js';
import type { ModelBundle } from '../../model/model-bundle.js';
import { encodePlayEvent, encodeSearchEvent } from '../../proto/event-codec.js';
import { createCatalogue } from '../../simulator/catalogue.js';
import { Random } from '../../simulator/random.js';
import { World } from '../../simulator/world.js';

/**
 * Fault-injection harness. A scenario streams a known set of events (simulated listeners plus
 * poison records), injects faults while real consumers run, and checks the end state against a
 * ground truth computed by replaying the same records once, in order, per user.
 */

/** Long form (scripts/reliability.sh) or the short form CI runs. */
export const LONG = process.env.TASTE_RELIABILITY_LONG === '1';

/** The kill moments' seed of the kill -9 scenarios: logged every run; TASTE_KILL_SEED=<seed> replays a failure's moments. */
export const KILL_SEED = process.env.TASTE_KILL_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.TASTE_KILL_SEED);

/** Milliseconds after each start at which that consumer is killed: 200-1700, from the seed alone. */
export function killMoments(seed: number, cycles: number): number[] {
  const random = new Random(seed);
  return Array.from({ length: cycles }, () => 200 + Math.floor(random.float() * 1500));
}

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export interface StreamSpec {
  events: number;
  users: number;
  seed: number;
  /** One poison record per this many events. @default 0 (none) */
  poisonEvery?: number;
  partitions?: number;
  /** Pace production (events/s) so that it overlaps the faults; unpaced when absent. */
  ratePerSecond?: number;
}

function simulatedWorld(spec: StreamSpec): World {
  return new World({ seed: spec.seed, users: spec.users, catalogue: createCatalogue({ seed: 1, items: 5000 }), durationMs: Number.POSITIVE_INFINITY });
}

/** The ids of the scenario's listeners, known before anything is produced. */
export function simulatedUserIds(spec: StreamSpec): string[] {
  return simulatedWorld(spec).users.map((user) => user.userId);
}

export const POISON_KINDS = ['undecodable', 'wrong-type', 'no-user', 'absurd-time', 'oversized', 'missing-item', 'key-mismatch'] as const;

/** Produces the events (and poison) to the scenario's topics; returns how many records were sent. */
export async function produceStream(kafka: Kafka, topics: StreamTopics, spec: StreamSpec): Promise<{ records: number; poison: number }> {
  const partitions = spec.partitions ?? 4;
  await ensureTopics(kafka, [
    { topic: topics.play, partitions },
    { topic: topics.search, partitions },
    { topic: topics.deadLetter, partitions: 1 },
    ...(topics.erasure ? [{ topic: topics.erasure, partitions }] : []),
  ]);
  const world = simulatedWorld(spec);
  const started = Date.now();
  let producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let connected = true;
  let records = 0;
  let poison = 0;
  let plays: { key: string | null; value: Buffer; headers?: Record<string, string> }[] = [];
  let searches: { key: string | null; value: Buffer }[] = [];
  const flush = async () => {
    const topicMessages = [];
    if (plays.length) topicMessages.push({ topic: topics.play, messages: plays });
    if (searches.length) topicMessages.push({ topic: topics.search, messages: searches });
    // A broker restart can outlast kafkajs' own retries: keep trying. A retried batch may land
    // twice; the ground truth is read from the topics, so such duplicates count as real records.
    for (let attempt = 0; topicMessages.length; attempt++) {
      try {
        // A replacement's connect is tried here, so one that fails while the broker is down is
        // tried again (kafkajs never reconnects a producer whose connect failed: "disconnected").
        if (!connected) {
          await producer.connect();
          connected = true;
        }
        await producer.sendBatch({ topicMessages, acks: -1 });
        break;
      } catch (error) {
        if (attempt >= 30) throw error;
        if ((error as { retriable?: boolean }).retriable === false) {
          // kafkajs' idempotent producer can lose track of its sequence numbers after a request it
          // timed out did land (OUT_OF_ORDER_SEQUENCE_NUMBER, seen under load), and never recovers:
          // a new producer gets a new producer id and sequence.
          await producer.disconnect().catch(() => undefined);
          producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
          connected = false;
        }
        await sleep(1000);
      }
    }
    plays = [];
    searches = [];
  };
  const events = world.events();
  for (let i = 0; i < spec.events; i++) {
    const next = events.next();
    if (next.done) break;
    const simulated = next.value;
    if (simulated.kind === 'play') plays.push({ key: simulated.event.userId, value: encodePlayEvent(simulated.event) });
    else searches.push({ key: simulated.event.userId, value: encodeSearchEvent(simulated.event) });
    records++;
    if (spec.poisonEvery && i % spec.poisonEvery === spec.poisonEvery - 1) {
      plays.push({ ...poisonRecord(POISON_KINDS[poison % POISON_KINDS.length]!, simulated.event.userId, simulated.event.eventTimeMs), headers: { [POISON_HEADER]: '1' } });
      poison++;
      records++;
    }
    if (plays.length + searches.length >= 500) {
      await flush();
      if (spec.ratePerSecond) {
        const ahead = (records / spec.ratePerSecond) * 1000 - (Date.now() - started);
        if (ahead > 0) await sleep(ahead);
      }
    }
  }
  await flush();
  await producer.disconnect();
  return { records, poison };
}

/** Marks the poison records the harness writes, so a test can find them without the code under test (the consumer ignores headers). */
export const POISON_HEADER = 'taste-test-poison';

function poisonRecord(kind: (typeof POISON_KINDS)[number], userId: string, eventTimeMs: number): { key: string | null; value: Buffer } {
  const valid = { userId, itemUri: 'taste:track:1', itemKind: 'ITEM_KIND_TRACK', eventTimeMs, msPlayed: 1000, itemDurationMs: 2000, context: 'PLAY_CONTEXT_HOME', endReason: 'END_REASON_COMPLETED' } as const;
  switch (kind) {
    case 'undecodable':
      return { key: userId, value: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) };
    case 'wrong-type':
      // A search payload on the play topic decodes into nonsense fields (enum 99).
      return { key: userId, value: encodeSearchEvent({ userId, query: 'x', eventTimeMs, clickedItemUri: 'taste:track:1', clickedItemKind: 99 as unknown as 'ITEM_KIND_TRACK' }) };
    case 'no-user':
      return { key: null, value: encodePlayEvent({ ...valid, userId: '' }) };
    case 'absurd-time':
      return { key: userId, value: encodePlayEvent({ ...valid, eventTimeMs: 4_000_000_000_000 }) };
    case 'oversized':
      return { key: userId, value: encodePlayEvent({ ...valid, itemUri: `taste:track:${'9'.repeat(70_000)}` }) };
    case 'missing-item':
      return { key: userId, value: encodePlayEvent({ ...valid, itemUri: '' }) };
    case 'key-mismatch':
      return { key: `${userId}-other`, value: encodePlayEvent(valid) };
  }
}

export interface Expectation {
  window: WindowEvent[];
  applied: number;
  /** Every valid event of the user, in event order (what a stateful model's state covers). */
  events: WindowEvent[];
}

/**
 * Ground truth: every record on the topics read back once with its coordinates. The poison the
 * harness wrote is known by its header; every other record is featurized and ordered by the
 * independent oracle (oracle.ts), not by the pipeline's code. `valid` + `invalid` = every record.
 */
export async function groundTruth(
  kafka: Kafka,
  topics: StreamTopics,
  bundle: ModelBundle,
): Promise<{ users: Map<string, Expectation>; valid: number; invalid: number }> {
  const records = await readAll(kafka, [topics.play, topics.search]);
  const valid = records.filter((record) => record.headers[POISON_HEADER] !== '1');
  const users = oracleTruth(valid, topics, oracleModel(dirname(bundle.onnxPath), bundle.metadata));
  return { users, valid: valid.length, invalid: records.length - valid.length };
}

interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** Every record of the topics, from the beginning to the current end, without a consumer group. */
export async function readAll(kafka: Kafka, topicNames: string[]): Promise<ReadRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, number>();
  for (const topic of topicNames) {
    for (const { partition, high } of await admin.fetchTopicOffsets(topic)) ends.set(`${topic}:${partition}`, Number(high));
  }
  await admin.disconnect();
  const remaining = new Set([...ends].filter(([, high]) => high > 0).map(([key]) => key));
  const records: ReadRecord[] = [];
  if (remaining.size === 0) return records;
  const consumer = kafka.consumer({ groupId: `ground-truth-${Date.now()}-${Math.random()}`, maxBytesPerPartition: 4 << 20 });
  await consumer.connect();
  await consumer.subscribe({ topics: topicNames, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) {
            const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]));
            records.push({ topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value, headers });
            const key = `${batch.topic}:${batch.partition}`;
            if (Number(message.offset) + 1 >= (ends.get(key) ?? 0)) remaining.delete(key);
          }
          if (remaining.size === 0) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return records;
}

export interface Verdict {
  users: number;
  expectedEvents: number;
  appliedEvents: number;
  /** Events of users whose applied count is below the truth. */
  lost: number;
  /** Events applied more than once. */
  doubleApplied: number;
  windowMismatches: string[];
  embeddingMismatches: string[];
}

/** Compares the store with the ground truth; embeddings are recomputed from the expected windows. */
export async function verify(store: FeatureStore, truth: Map<string, Expectation>, pool: InferencePool): Promise<Verdict> {
  const userIds = [...truth.keys()];
  const verdict: Verdict = { users: userIds.length, expectedEvents: 0, appliedEvents: 0, lost: 0, doubleApplied: 0, windowMismatches: [], embeddingMismatches: [] };
  for (let start = 0; start < userIds.length; start += 200) {
    const chunk = userIds.slice(start, start + 200);
    const states = await store.loadStates(chunk);
    const stored = await store.readEmbeddings(chunk);
    const expectedEmbeddings = await expectedEmbeddingsOf(pool, chunk.map((userId) => truth.get(userId)!));
    chunk.forEach((userId, index) => {
      const expected = truth.get(userId)!;
      const state = states.get(userId)!;
      verdict.expectedEvents += expected.applied;
      verdict.appliedEvents += state.appliedTotal;
      if (state.appliedTotal < expected.applied) verdict.lost += expected.applied - state.appliedTotal;
      if (state.appliedTotal > expected.applied) verdict.doubleApplied += state.appliedTotal - expected.applied;
      if (canonical(state.window) !== canonical(expected.window)) verdict.windowMismatches.push(userId);
      const actual = stored[index]?.vector;
      const want = expectedEmbeddings[index]!;
      if (!actual || actual.length !== want.length || want.some((value, d) => Math.abs(value - actual[d]!) > 1e-4)) {
        verdict.embeddingMismatches.push(userId);
      }
    });
  }
  return verdict;
}

/**
 * Windowed: the model over the expected window. Stateful: one pass over all the user's events in
 * event order from the zero state (exact when no event arrived later than the tail allows; the
 * suite's scenarios produce each user's events in order on one topic).
 */
async function expectedEmbeddingsOf(pool: InferencePool, expectations: readonly Expectation[]): Promise<Float32Array[]> {
  const { metadata } = pool.bundle;
  if (!metadata.stateful) return pool.embed(expectations.map((e) => e.window));
  const advancer = new StatefulAdvancer(pool, metadata.stateful);
  const empty = { version: 0, window: [], highWater: new Map(), appliedTotal: 0 };
  const advanced = await advancer.advance(expectations.map((e) => ({ state: empty, fresh: e.events })));
  return advanced.map((a) => a.embedding ?? new Float32Array(0));
}

function canonical(window: readonly WindowEvent[]): string {
  return JSON.stringify(window.map((e) => [e.eventTimeMs, e.stream, e.partition, e.offset, e.itemId, e.kind, e.queryTokens]));
}


/** Polls state versions of some users and records any that goes backwards. */
export class VersionWatcher {
  readonly regressions: string[] = [];
  readonly #seen = new Map<string, number>();
  /** When some watched user's version last went up. */
  readonly changes: number[] = [];
  #timer: NodeJS.Timeout | undefined;
  #polls = 0;

  constructor(
    readonly store: FeatureStore,
    readonly userIds: string[],
  ) {}

  start(intervalMs = 100): void {
    this.#timer = setInterval(() => void this.#poll(), intervalMs);
  }

  /** First write seen at or after `since` (ms since epoch), or undefined. */
  firstChangeSince(since: number): number | undefined {
    return this.changes.find((at) => at >= since);
  }

  get polls(): number {
    return this.#polls;
  }

  async #poll(): Promise<void> {
    try {
      const states = await this.store.loadStates(this.userIds);
      for (const [userId, state] of states) {
        const before = this.#seen.get(userId) ?? 0;
        if (state.version < before) this.regressions.push(`${userId}: ${before} → ${state.version}`);
        if (state.version > before) this.changes.push(Date.now());
        this.#seen.set(userId, Math.max(before, state.version));
      }
      this.#polls++;
    } catch {
      // Redis may be down on purpose in some scenarios.
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Each consumer's whole stderr lands here (the repo's ignored .taste folder). */
export const CONSUMER_LOG_DIR = join(REPO, '.taste', 'reliability-logs');

/** A `taste consume` process: real process, real signals. */
export class ConsumerProcess {
  readonly child: ChildProcess;
  stderr = '';
  /** Where the whole log goes, so a failed run in CI can be read after the fact. */
  readonly logFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, 'consume', '--log-level', 'info', '--intra-op-threads', '1', '--metrics-port', '0', ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    mkdirSync(CONSUMER_LOG_DIR, { recursive: true });
    this.logFile = join(CONSUMER_LOG_DIR, `consume-${Date.now()}-${this.child.pid ?? 'unstarted'}.log`);
    const log = createWriteStream(this.logFile);
    this.child.stderr!.on('data', (chunk) => {
      log.write(chunk);
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.child.on('exit', () => log.end());
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves once the job runs (its signal handlers are in place), or after `timeoutMs`. */
  async waitStarted(timeoutMs = 60_000): Promise<boolean> {
    const startedOrExited = () => (this.started || this.child.exitCode !== null ? true : undefined);
    await pollUntil(startedOrExited, { what: 'the stream job to start', timeoutMs, intervalMs: 50 }).catch(unlessTimeout);
    return this.started;
  }

  get started(): boolean {
    return this.stderr.includes('stream job started');
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

export function consumerArgs(topics: StreamTopics, groupId: string, keyPrefix: string, extra: string[] = []): string[] {
  return [
    '--plays-topic', topics.play,
    '--searches-topic', topics.search,
    '--dead-letter-topic', topics.deadLetter,
    // `taste consume` reads an erasure topic by default: each scenario gets its own.
    ...(topics.erasure ? ['--erasures-topic', topics.erasure] : []),
    '--group-id', groupId,
    '--key-prefix', keyPrefix,
    '--model', DEFAULT_MODEL_DIR,
    ...extra,
  ];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prints one row of the closing table: scenario, events, faults, lost, double-applied, regressions, recovery. */
export function report(row: { scenario: string; events: number; faults: string; verdict: Verdict; regressions: number; recoveryMs: number }): void {
  const { verdict } = row;
  console.log(
    `[reliability] ${row.scenario} | events ${row.events} | faults ${row.faults} | lost ${verdict.lost} | double-applied ${verdict.doubleApplied} | version regressions ${row.regressions} | window mismatches ${verdict.windowMismatches.length} | embedding mismatches ${verdict.embeddingMismatches.length} | recovery ${row.recoveryMs} ms`,
  );
}

/** Waits until the group has consumed everything on the topics (lag 0); returns the time taken. */
export async function waitForLagZero(kafka: Kafka, groupId: string, topicNames: string[], timeoutMs = 120_000): Promise<{ lag: number; ms: number }> {
  const started = Date.now();
  let lag = Number.POSITIVE_INFINITY;
  const lagZero = async () => {
    lag = await consumerGroupLag(kafka, groupId, topicNames).catch(() => Number.POSITIVE_INFINITY);
    return lag === 0 ? lag : undefined;
  };
  await pollUntil(lagZero, { what: `lag 0 of group ${groupId}`, timeoutMs, intervalMs: 500 }).catch(unlessTimeout);
  return { lag, ms: Date.now() - started };
}

/** For waits whose caller judges the outcome itself: a timeout is an answer, anything else is rethrown. */
function unlessTimeout(error: unknown): undefined {
  if (isPollTimeout(error)) return undefined;
  throw error;
}

/** Resident memory of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A redis-server of the scenario's own (not the shared one), persisted so a restart keeps state. */
export class OwnRedis {
  #process: ChildProcess | undefined;

  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.#process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
    await pollUntil(async () => ((await portAnswers(this.port)) ? true : undefined), { what: `redis-server to listen on ${this.port}`, timeoutMs: 10_000, intervalMs: 50 });
  }

  /** Stops it the way an outage does: the process is gone, clients get connection errors. */
  async stop(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM'); // redis flushes its append-only file on SIGTERM
    await exited;
  }
}

export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The scenario's promise: drained, nothing lost or applied twice, no version went back, same state as a clean run. */
export function assertExactlyOnce(
  t: ExecutionContext,
  outcome: { lag: number; verdict: Verdict; regressions: string[]; consumers?: readonly ConsumerProcess[]; modelVersion?: string },
): void {
  // A consumer that stalls says why in its log: show the end of each one's beside the lag.
  const logs = (outcome.consumers ?? []).map((consumer) => `--- ${consumer.logFile} (last lines)\n${consumer.stderr.slice(-3000)}`).join('\n');
  t.is(outcome.lag, 0, `consumer group lag${logs ? `\n${logs}` : ''}`);
  // With shadow models each version is checked on its own: the messages name the one that failed.
  const of = outcome.modelVersion === undefined ? '' : ` (model version ${outcome.modelVersion})`;
  t.is(outcome.verdict.lost, 0, `lost${of}`);
  t.is(outcome.verdict.doubleApplied, 0, `double-applied${of}`);
  t.deepEqual(outcome.regressions, [], `version regressions${of}`);
  t.deepEqual(outcome.verdict.windowMismatches, [], `window mismatches${of}`);
  t.deepEqual(outcome.verdict.embeddingMismatches, [], `embedding mismatches${of}`);
}
