import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestFn } from 'ava';
import { type ColumnSource, parquetWriteFile } from 'hyparquet-writer';
import type { Checkpoint } from '../../backfill/checkpoint.js';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { eventToJson } from '../../events/jsonl.js';
import type { EventRecord } from '../../events/event-record.js';
import { KAFKA_BROKERS, REDIS_URL } from '../helpers/environment.js';
import { play, search } from '../helpers/pipeline.js';

export const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'taste-backfill-test-'));
}

/** The environment of the `taste` processes the CLI tests start: the test services, quiet, one ONNX thread. */
export const cliEnv = { TASTE_REDIS_URL: REDIS_URL, TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_LOG_LEVEL: 'warn', TASTE_INTRA_OP_THREADS: '1' };

/** What a CLI test file shares: a Redis client (to hash what the runs wrote) and a temporary folder. */
export interface CliContext {
  redis: RedisClient;
  dir: string;
}

/** Opens the CLI context before the file's tests and closes it after them. */
export function withCliContext(test: TestFn<CliContext>): void {
  test.before(async (t) => {
    const redis = createRedisClient({ url: REDIS_URL, commandTimeoutMs: 10_000 });
    await waitForRedis(redis);
    t.context = { redis, dir: await tempDir() };
  });
  test.after.always((t) => {
    t.context.redis.disconnect();
  });
}

/**
 * SHA-256 over every key under `prefix` (names without the prefix, sorted) and all their fields
 * (sorted, raw bytes; a set's members, sorted): two prefixes with the same digest hold byte-identical state.
 * `rewrite` replaces a hash field's bytes before they are hashed (to compare states that differ in a known way).
 */
export async function stateDigest(
  redis: RedisClient,
  prefix: string,
  rewrite: (field: string, bytes: Buffer) => Buffer = (_field, bytes) => bytes,
): Promise<{ keys: number; digest: string }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  keys.sort();
  const hash = createHash('sha256');
  for (const key of keys) {
    hash.update(`${key.slice(prefix.length)}\0`);
    // The state hashes, and beside them each user's set of model versions (featurestore/keys.ts).
    if ((await redis.type(key)) === 'set') {
      for (const member of (await redis.smembers(key)).sort()) hash.update(`${member}\0`);
      continue;
    }
    const fields = await redis.hgetallBuffer(key);
    for (const name of Object.keys(fields).sort()) hash.update(`${name}\0`).update(rewrite(name, fields[name]!)).update('\0');
  }
  return { keys: keys.length, digest: hash.digest('hex') };
}

export async function writeJsonl(path: string, events: readonly EventRecord[], extraLines: Record<number, string> = {}): Promise<void> {
  const lines = events.map(eventToJson);
  // Raw lines (bad input for the tests) at the given 0-based positions of the written file.
  for (const [at, text] of Object.entries(extraLines).sort((a, b) => Number(a[0]) - Number(b[0]))) lines.splice(Number(at), 0, text);
  await writeFile(path, lines.join('\n') + '\n');
}

/** The events as a Parquet file with one column per JSONL field (nulls where a type has none). */
/** How a test Parquet file is written besides its events: the codec (default Snappy) and columns added after the events' ones. */
type WriteOptions = Parameters<typeof parquetWriteFile>[0];
export interface ParquetWriting {
  codec?: WriteOptions['codec'];
  compressors?: WriteOptions['compressors'];
  columns?: ColumnSource[];
  /** Event columns left out (a sink's file of one topic has no `type`). */
  omit?: string[];
}

export async function writeParquet(path: string, events: readonly EventRecord[], rowGroupSize = 1000, writing: ParquetWriting = {}): Promise<void> {
  const column = <T>(pick: (event: EventRecord) => T | null) => events.map(pick);
  const play = <T>(pick: (event: Extract<EventRecord, { kind: 'play' }>['event']) => T) => column((e) => (e.kind === 'play' ? pick(e.event) : null));
  const search = <T>(pick: (event: Extract<EventRecord, { kind: 'search' }>['event']) => T) => column((e) => (e.kind === 'search' ? pick(e.event) : null));
  parquetWriteFile({
    filename: path,
    rowGroupSize,
    ...(writing.codec ? { codec: writing.codec } : {}),
    ...(writing.compressors ? { compressors: writing.compressors } : {}),
    columnData: ([
      { name: 'type', data: column((e) => e.kind), type: 'STRING' },
      { name: 'userId', data: column((e) => e.event.userId), type: 'STRING' },
      { name: 'eventTimeMs', data: column((e) => BigInt(e.event.eventTimeMs)), type: 'INT64' },
      { name: 'itemUri', data: play((e) => e.itemUri), type: 'STRING' },
      { name: 'itemKind', data: play((e) => e.itemKind), type: 'STRING' },
      { name: 'msPlayed', data: play((e) => e.msPlayed), type: 'INT32' },
      { name: 'itemDurationMs', data: play((e) => e.itemDurationMs), type: 'INT32' },
      { name: 'context', data: play((e) => e.context), type: 'STRING' },
      { name: 'endReason', data: play((e) => e.endReason), type: 'STRING' },
      { name: 'query', data: search((e) => e.query), type: 'STRING' },
      { name: 'clickedItemUri', data: search((e) => e.clickedItemUri), type: 'STRING' },
      { name: 'clickedItemKind', data: search((e) => e.clickedItemKind), type: 'STRING' },
      ...(writing.columns ?? []),
    ] satisfies ColumnSource[]).filter((source) => !writing.omit?.includes(source.name)),
  });
}

export function simPlay(userId: string, itemUri: string, eventTimeMs: number, extra: Partial<Extract<EventRecord, { kind: 'play' }>['event']> = {}): EventRecord {
  return { kind: 'play', event: play(userId, itemUri, eventTimeMs, extra) };
}

export function simSearch(userId: string, query: string, eventTimeMs: number, clickedItemUri = ''): EventRecord {
  return { kind: 'search', event: search(userId, query, eventTimeMs, clickedItemUri) };
}

/** A deterministic history: `users` users, `perUser` events each, interleaved in time order. */
export function history(prefix: string, users: number, perUser: number, startMs: number): EventRecord[] {
  const events: EventRecord[] = [];
  for (let i = 0; i < perUser; i++) {
    for (let u = 0; u < users; u++) {
      const userId = `${prefix}-${u}`;
      const at = startMs + (i * users + u) * 1000;
      events.push(
        (i + u) % 7 === 3
          ? simSearch(userId, `query ${(i * 31 + u) % 17} mix`, at, (i + u) % 2 === 0 ? `taste:track:${2 + ((i * 13 + u) % 400)}` : '')
          : simPlay(userId, `taste:track:${2 + ((i * 7 + u * 3) % 400)}`, at, {
              msPlayed: ((i + u) % 3) * 90_000 + 5_000,
              endReason: (i + u) % 5 === 0 ? 'END_REASON_SKIPPED_FORWARD' : 'END_REASON_USER_STOPPED',
            }),
      );
    }
  }
  return events;
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function taste(args: string[], env: NodeJS.ProcessEnv = {}, onSpawn?: (kill: (signal: NodeJS.Signals) => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.((signal) => child.kill(signal));
  });
}

/**
 * An `onSpawn` for `taste` that SIGKILLs the backfill once its checkpoint records at least `steps`
 * steps and is not done; `killedAt` is the checkpoint it saw then. A poll slower than a step only
 * delays the kill: assertions should use the checkpoint as the process left it, not `steps`.
 */
export function killAfterSteps(checkpointPath: string, steps: number): { onSpawn: (kill: (signal: NodeJS.Signals) => void) => void; killedAt: () => Checkpoint | undefined } {
  let killedAt: Checkpoint | undefined;
  const onSpawn = (kill: (signal: NodeJS.Signals) => void) => {
    const poll = setInterval(() => {
      readFile(checkpointPath, 'utf8')
        .then((text) => {
          const state = JSON.parse(text) as Checkpoint;
          if (killedAt === undefined && state.counts.steps >= steps && !state.done) {
            killedAt = state;
            kill('SIGKILL');
            clearInterval(poll);
          }
        })
        .catch(() => undefined);
    }, 10);
    setTimeout(() => clearInterval(poll), 60_000).unref();
  };
  return { onSpawn, killedAt: () => killedAt };
}
