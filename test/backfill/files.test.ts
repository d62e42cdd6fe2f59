import anyTest, { type TestFn } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackfillSummary } from '../../backfill/backfill.js';
import type { BadRecord } from '../../backfill/chunks.js';
import { EventFeaturizer } from '../../events/featurizer.js';
import { fileCoordinates, fileDigest } from '../../backfill/file-identity.js';
import { type BackfillJobOptions, runBackfillJob } from '../../backfill/job.js';
import { defaultValidationLimits } from '../../events/validation.js';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { mergeWindow } from '../../model/features.js';
import type { WindowEvent } from '../../events/window-event.js';
import { loadModelBundle, type ModelBundle } from '../../model/model-bundle.js';
import type { EventRecord } from '../../events/event-record.js';
import { type Embedder, Updater } from '../../updater/updater.js';
import { DEFAULT_MODEL_DIR, REDIS_URL, unique } from '../helpers/environment.js';
import { testLogger } from '../helpers/pipeline.js';
import { history, simPlay, stateDigest, tempDir, writeJsonl, writeParquet } from './helpers.js';

interface Context {
  redis: RedisClient;
  bundle: ModelBundle;
  dir: string;
}

const test = anyTest as TestFn<Context>;
const DAY = 86_400_000;

test.before(async (t) => {
  const redis = createRedisClient({ url: REDIS_URL, commandTimeoutMs: 10_000 });
  await waitForRedis(redis);
  t.context = { redis, bundle: await loadModelBundle(DEFAULT_MODEL_DIR), dir: await tempDir() };
});

test.after.always((t) => {
  t.context.redis.disconnect();
});

function backfill(files: string[], keyPrefix: string, options: Partial<BackfillJobOptions> = {}): Promise<BackfillSummary> {
  return runBackfillJob({
    input: { kind: 'files', paths: files },
    modelDir: DEFAULT_MODEL_DIR,
    redis: { url: REDIS_URL },
    keyPrefix,
    intraOpThreads: 1,
    logger: testLogger,
    ...options,
  });
}

function store(t: { context: Context }, keyPrefix: string): FeatureStore {
  const { metadata } = t.context.bundle;
  return new FeatureStore({ redis: t.context.redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix });
}

/** What each user's window must be: the newest L of their valid events, featurized as the file source does. */
async function expectedWindows(t: { context: Context }, path: string, events: readonly EventRecord[], lineOf = (index: number) => index + 1): Promise<Map<string, WindowEvent[]>> {
  const { metadata, vocabulary } = t.context.bundle;
  const coordinates = fileCoordinates(await fileDigest(path, 'content'), { minEventTimeMs: defaultValidationLimits.minEventTimeMs });
  const featurizer = new EventFeaturizer({ vocabulary, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets });
  const byUser = new Map<string, WindowEvent[]>();
  events.forEach((simulated, index) => {
    const result = featurizer.featurizeRecord(simulated, coordinates.topic, coordinates.partition, lineOf(index), Date.now());
    if (!result.ok) return;
    const list = byUser.get(result.event.userId) ?? [];
    list.push(result.event.event);
    byUser.set(result.event.userId, list);
  });
  for (const [user, list] of byUser) byUser.set(user, mergeWindow([], list, metadata.maxSeqLen));
  return byUser;
}

/** Window content without source coordinates (which differ between files and topics). */
function features(window: readonly WindowEvent[]) {
  return window.map(({ eventTimeMs, stream, itemId, kind, queryTokens }) => ({ eventTimeMs, stream, itemId, kind, queryTokens: [...queryTokens] }));
}

test('a JSONL backfill writes the window, embedding and high-water mark each user\'s events imply', async (t) => {
  const prefix = unique('bf');
  const path = join(t.context.dir, `${prefix}.jsonl`);
  const events = history(prefix, 12, 70, Date.now() - 30 * DAY);
  await writeJsonl(path, events);
  const summary = await backfill([path], prefix);
  t.is(summary.stoppedBy, 'complete');
  t.is(summary.events, events.length);
  t.is(summary.applied, events.length);
  t.is(summary.duplicates, 0);
  t.is(summary.users, 12);

  const expected = await expectedWindows(t, path, events);
  const users = [...expected.keys()];
  const states = await store(t, prefix).loadStates(users);
  const embeddings = await store(t, prefix).readEmbeddings(users);
  const { topic, partition } = fileCoordinates(await fileDigest(path, 'content'), { minEventTimeMs: defaultValidationLimits.minEventTimeMs });
  users.forEach((user, index) => {
    const state = states.get(user)!;
    const want = expected.get(user)!;
    t.deepEqual(state.window, want, user);
    t.is(state.appliedTotal, 70, 'every event of the user applied once');
    const lastLine = Math.max(...events.flatMap((event, line) => (event.event.userId === user ? [line + 1] : [])));
    t.deepEqual([...state.highWater], [[`${topic}:${partition}`, lastLine]]);
    const embedding = embeddings[index]!;
    t.is(embedding.eventsInWindow, t.context.bundle.metadata.maxSeqLen);
    t.is(embedding.lastEventMs, want[want.length - 1]!.eventTimeMs);
    t.is(embedding.updatedMs, embedding.lastEventMs, 'upd is the newest event time (--updated-at last-event)');
    t.true(Math.abs(Math.hypot(...embedding.vector) - 1) < 1e-4);
  });
});

test('re-running the same file is idempotent: nothing written, identical bytes', async (t) => {
  const prefix = unique('bf');
  const path = join(t.context.dir, `${prefix}.jsonl`);
  const events = history(prefix, 8, 30, Date.now() - 10 * DAY);
  await writeJsonl(path, events);
  await backfill([path], prefix);
  const before = await stateDigest(t.context.redis, prefix);
  const again = await backfill([path], prefix, { chunkSize: 17, batchSize: 3 });
  t.is(again.applied, 0);
  t.is(again.duplicates, events.length);
  t.is(again.writes, 0);
  t.deepEqual(await stateDigest(t.context.redis, prefix), before);
  t.is(before.keys, 2 * 8, '8 users: a state and a set of model versions each');
});

test('small steps and many batches in flight lose or reorder no user\'s events; bytes depend only on the step size', async (t) => {
  const base = unique('bf');
  const path = join(t.context.dir, `${base}.jsonl`);
  // Few users, many events each: every step holds most users, so steps overlap in users heavily.
  const events = history(base, 5, 120, Date.now() - 20 * DAY);
  await writeJsonl(path, events);
  const [a, b, c] = [unique('bf'), unique('bf'), unique('bf')];
  const big = await backfill([path], a, { chunkSize: 1_000_000 });
  const tinyOne = await backfill([path], b, { chunkSize: 7, batchSize: 1, concurrency: 8 });
  const tinyTwo = await backfill([path], c, { chunkSize: 7, batchSize: 2, concurrency: 3 });
  for (const summary of [big, tinyOne, tinyTwo]) {
    t.is(summary.applied, events.length, 'every event applied');
    t.is(summary.duplicates, 0, 'none taken for a duplicate');
  }
  const expected = await expectedWindows(t, path, events);
  const users = [...expected.keys()];
  const [bigStates, tinyStates] = await Promise.all([store(t, a).loadStates(users), store(t, b).loadStates(users)]);
  for (const user of users) {
    t.deepEqual(tinyStates.get(user)!.window, expected.get(user));
    t.deepEqual(tinyStates.get(user)!.highWater, bigStates.get(user)!.highWater);
    t.is(tinyStates.get(user)!.appliedTotal, 120);
    t.true(tinyStates.get(user)!.version > bigStates.get(user)!.version, 'one write per step that holds the user');
  }
  const [bigEmb, tinyEmb] = await Promise.all([store(t, a).readEmbeddings(users), store(t, b).readEmbeddings(users)]);
  users.forEach((_, index) => t.deepEqual(Buffer.from(tinyEmb[index]!.vector.buffer), Buffer.from(bigEmb[index]!.vector.buffer), 'same window, same bits'));
  t.deepEqual(await stateDigest(t.context.redis, b), await stateDigest(t.context.redis, c), 'same step size: identical bytes, whatever the batch size and concurrency');
});

test('why batches in flight never share a user: a later batch landing first makes the earlier events look applied', async (t) => {
  // The hazard the backfill's batching avoids, shown on the updater itself.
  const prefix = unique('bf');
  const { metadata } = t.context.bundle;
  const zero: Embedder = { embed: async (windows) => windows.map(() => Float32Array.from({ length: metadata.embeddingDim }, () => 0.1)) };
  const updater = new Updater({ store: store(t, prefix), embedder: zero, maxSeqLen: metadata.maxSeqLen });
  const event = (offset: number) => ({
    userId: 'u',
    topic: 'file/x',
    event: { eventTimeMs: 1.7e12 + offset, stream: 0 as const, partition: 0, offset, itemId: 2, kind: 1 as const, queryTokens: [] },
  });
  await updater.apply([event(3), event(4)]); // the later batch first
  const late = await updater.apply([event(1), event(2)]);
  t.is(late.applied, 0);
  t.is(late.duplicates, 2, 'events 1 and 2 are lost');
});

test('--user keeps only those users; --since/--until keep event times in [since, until)', async (t) => {
  const prefix = unique('bf');
  const path = join(t.context.dir, `${prefix}.jsonl`);
  const start = Date.now() - 5 * DAY;
  const events = history(prefix, 6, 20, start);
  await writeJsonl(path, events);
  const keep = new Set([`${prefix}-1`, `${prefix}-4`]);
  const summary = await backfill([path], prefix, { users: keep });
  t.is(summary.events, 40);
  t.is(summary.filtered, events.length - 40);
  const states = await store(t, prefix).loadStates([...Array(6).keys()].map((u) => `${prefix}-${u}`));
  t.deepEqual([...states].filter(([, state]) => state.version > 0).map(([user]) => user).sort(), [...keep].sort());

  const timed = unique('bf');
  const since = start + 6 * 10_000; // events are 1 s apart: rounds 10..15 of 6 users
  const until = start + 6 * 16_000;
  const windowed = await backfill([path], timed, { sinceMs: since, untilMs: until });
  t.is(windowed.events, 36);
  const timedStates = await store(t, timed).loadStates([`${prefix}-0`]);
  const times = timedStates.get(`${prefix}-0`)!.window.map((event) => event.eventTimeMs);
  t.true(times.every((time) => time >= since && time < until));
  t.is(times.length, 6);
});

test('a dry run writes nothing and counts what it would apply', async (t) => {
  const prefix = unique('bf');
  const path = join(t.context.dir, `${prefix}.jsonl`);
  const events = history(prefix, 5, 10, Date.now() - DAY);
  await writeJsonl(path, events);
  const dry = await backfill([path], prefix, { dryRun: true, checkpointPath: join(t.context.dir, `${prefix}.ckpt`) });
  t.is(dry.applied, events.length);
  t.deepEqual(await stateDigest(t.context.redis, prefix), { keys: 0, digest: (await stateDigest(t.context.redis, unique('none'))).digest });
  await t.throwsAsync(import('node:fs/promises').then((fs) => fs.access(join(t.context.dir, `${prefix}.ckpt`))), undefined, 'no checkpoint written');
  await backfill([path], prefix);
  const dryAgain = await backfill([path], prefix, { dryRun: true });
  t.is(dryAgain.applied, 0);
  t.is(dryAgain.duplicates, events.length);
});

test('bad lines are reported with file:line and reason, counted and skipped', async (t) => {
  const prefix = unique('bf');
  const path = join(t.context.dir, `${prefix}.jsonl`);
  const now = Date.now();
  const good = [simPlay(`${prefix}-a`, 'taste:track:2', now - 3000), simPlay(`${prefix}-a`, 'taste:track:3', now - 2000), simPlay(`${prefix}-b`, 'taste:track:4', now - 1000)];
  await writeJsonl(path, good, {
    1: '{"type":"play","userId":', // line 2: not JSON
    2: JSON.stringify({ type: 'play', userId: `${prefix}-a`, itemUri: 'x', eventTimeMs: now, colour: 'red' }), // line 3: unknown field
    3: JSON.stringify({ type: 'play', userId: 'not valid!', itemUri: 'x', eventTimeMs: now }), // line 4: bad user id
    5: JSON.stringify({ type: 'play', userId: `${prefix}-b`, itemUri: 'x', eventTimeMs: 5 }), // line 6: time out of range
  });
  const bad: BadRecord[] = [];
  const summary = await backfill([path], prefix, { onInvalid: (record) => bad.push(record) });
  t.is(summary.invalid, 4);
  t.is(summary.applied, 3);
  t.deepEqual(
    bad.map((record) => [record.where.replace(/^.*\//, ''), record.reason]),
    [
      [`${prefix}.jsonl:2`, 'UNPARSABLE'],
      [`${prefix}.jsonl:3`, 'UNPARSABLE'],
      [`${prefix}.jsonl:4`, 'INVALID_USER_ID'],
      [`${prefix}.jsonl:6`, 'EVENT_TIME_OUT_OF_RANGE'],
    ],
  );
  t.regex(bad[1]!.detail, /unknown field "colour"/);

  const failFast = await backfill([path], unique('bf'), { failFast: true });
  t.is(failFast.stoppedBy, 'bad-record');
  t.regex(failFast.bad!.where, /:2$/);
  t.is(failFast.applied, 0, 'the step holding the bad record is not applied');
});

test('a Parquet file gives the same windows and embeddings as the same events in JSONL', async (t) => {
  const prefix = unique('bf');
  const jsonl = join(t.context.dir, `${prefix}.jsonl`);
  const parquet = join(t.context.dir, `${prefix}.parquet`);
  const events = history(prefix, 9, 60, Date.now() - 9 * DAY);
  await writeJsonl(jsonl, events);
  await writeParquet(parquet, events, 100);
  const [fromJsonl, fromParquet] = [unique('bf'), unique('bf')];
  const a = await backfill([jsonl], fromJsonl);
  const b = await backfill([parquet], fromParquet, { chunkSize: 250 });
  t.is(b.events, events.length);
  t.is(b.applied, a.applied);
  const users = [...Array(9).keys()].map((u) => `${prefix}-${u}`);
  const [x, y] = await Promise.all([store(t, fromJsonl).loadStates(users), store(t, fromParquet).loadStates(users)]);
  const [ex, ey] = await Promise.all([store(t, fromJsonl).readEmbeddings(users), store(t, fromParquet).readEmbeddings(users)]);
  users.forEach((user, index) => {
    t.deepEqual(features(y.get(user)!.window), features(x.get(user)!.window));
    t.deepEqual(Buffer.from(ey[index]!.vector.buffer), Buffer.from(ex[index]!.vector.buffer));
  });
  // Offsets are 1-based row numbers.
  const expected = await expectedWindows(t, parquet, events);
  t.deepEqual(y.get(users[0]!)!.window, expected.get(users[0]!));

  const broken = join(t.context.dir, `${prefix}-broken.parquet`);
  await writeFile(broken, 'PAR1 not really');
  await t.throwsAsync(backfill([broken], unique('bf')), { message: /not a readable Parquet file/ });
});

test('a directory of files is read in path order, each file its own source', async (t) => {
  const prefix = unique('bf');
  const dir = join(t.context.dir, prefix);
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  const start = Date.now() - 4 * DAY;
  const events = history(prefix, 4, 30, start);
  await writeJsonl(join(dir, 'part-1.jsonl'), events.slice(0, 50));
  await writeParquet(join(dir, 'part-2.parquet'), events.slice(50));
  await writeJsonl(join(dir, 'copy-of-1.jsonl.bak'), events.slice(0, 50)); // not an input extension
  const summary = await backfill([dir], prefix, { chunkSize: 33 });
  t.is(summary.applied, events.length);
  const states = await store(t, prefix).loadStates([`${prefix}-0`]);
  t.is(states.get(`${prefix}-0`)!.appliedTotal, 30);
  t.is(states.get(`${prefix}-0`)!.highWater.size, 2, 'one high-water mark per file');
});
