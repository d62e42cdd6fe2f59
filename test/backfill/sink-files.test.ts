import anyTest, { type TestFn } from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BadRecord } from '../../backfill/chunks.js';
import { displayName } from '../../backfill/file-discovery.js';
import { type BackfillJobOptions, runBackfillJob } from '../../backfill/job.js';
import { DEFAULT_KAFKA_COORDINATE_FIELDS } from '../../backfill/kafka-coordinates.js';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { ensureTopics } from '../../consumers/kafka.js';
import type { StreamJob } from '../../consumers/stream-job.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import type { EventRecord } from '../../events/event-record.js';
import { eventToJson } from '../../events/jsonl.js';
import { FeatureStore, type UserState } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { loadModelBundle } from '../../model/model-bundle.js';
import { decodePlayEvent, decodeSearchEvent, encodePlayEvent, encodeSearchEvent } from '../../proto/event-codec.js';
import { DEFAULT_MODEL_DIR, eventually, REDIS_URL, unique } from '../helpers/environment.js';
import { type StreamJobContext, testLogger, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';
import { cliEnv, history, killAfterSteps, stateDigest, taste, tempDir, writeParquet } from './helpers.js';

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);
const HOUR = 3_600_000;
const { topic: TOPIC, partition: PARTITION, offset: OFFSET } = DEFAULT_KAFKA_COORDINATE_FIELDS;

/** A record as a Kafka Connect sink writes it with InsertField: the event's value (no `type`: a topic holds one kind) and its coordinates. */
interface SinkRecord {
  topic: string;
  partition: number;
  offset: number;
  record: EventRecord;
}

function sinkLine({ topic, partition, offset, record }: SinkRecord, withType = false): string {
  const { type: _type, ...value } = JSON.parse(eventToJson(record)) as Record<string, unknown>;
  return JSON.stringify({ ...(withType ? { type: record.kind } : {}), ...value, [TOPIC]: topic, [PARTITION]: partition, [OFFSET]: offset });
}

/** Produces events keyed by user, each with its event time as the record timestamp. */
async function produce(t: { context: StreamJobContext }, topics: StreamTopics, events: readonly EventRecord[]): Promise<void> {
  const message = (e: EventRecord) => ({ key: e.event.userId, timestamp: String(e.event.eventTimeMs), value: e.kind === 'play' ? encodePlayEvent(e.event) : encodeSearchEvent(e.event) });
  await t.context.producer.sendBatch({
    acks: -1,
    topicMessages: [
      { topic: topics.play, messages: events.filter((e) => e.kind === 'play').map(message) },
      { topic: topics.search, messages: events.filter((e) => e.kind === 'search').map(message) },
    ],
  });
}

/** Every record of both topics with its coordinates, read back from the broker as a sink connector reads them. */
async function consumeAll(t: { context: StreamJobContext }, topics: StreamTopics, count: number): Promise<SinkRecord[]> {
  const consumer = t.context.kafka.consumer({ groupId: unique('sink') });
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.play, topics.search], fromBeginning: true });
  const records: SinkRecord[] = [];
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const record: EventRecord =
          topic === topics.play ? { kind: 'play', event: decodePlayEvent(message.value!) } : { kind: 'search', event: decodeSearchEvent(message.value!) };
        records.push({ topic, partition, offset: Number(message.offset), record });
        if (records.length === count) resolve();
      },
    });
  });
  await consumer.disconnect();
  return records;
}

/** One JSONL file per topic-partition, named as the Confluent S3 sink names them (`<topic>+<partition>+<start offset>`), in path order. */
async function writeSinkFiles(dir: string, records: readonly SinkRecord[]): Promise<string[]> {
  const files = new Map<string, SinkRecord[]>();
  for (const record of [...records].sort((x, y) => x.offset - y.offset)) {
    const key = `${record.topic}+${record.partition}`;
    files.set(key, [...(files.get(key) ?? []), record]);
  }
  const paths: string[] = [];
  for (const [key, list] of files) {
    const path = join(dir, `${key}+${String(list[0]!.offset).padStart(10, '0')}.json`);
    await writeFile(path, list.map((record) => sinkLine(record)).join('\n') + '\n');
    paths.push(path);
  }
  return paths.sort();
}

function fileBackfill(paths: string[], keyPrefix: string, topics: { play: string; search: string }, options: Partial<BackfillJobOptions> & { coordinates?: boolean } = {}) {
  const { coordinates = true, ...rest } = options;
  return runBackfillJob({
    input: { kind: 'files', paths, ...(coordinates ? { kafkaCoordinates: { fields: { ...DEFAULT_KAFKA_COORDINATE_FIELDS }, topics } } : {}) },
    modelDir: DEFAULT_MODEL_DIR,
    redis: { url: REDIS_URL },
    keyPrefix,
    intraOpThreads: 1,
    logger: testLogger,
    ...rest,
  });
}

async function totals(store: FeatureStore, users: readonly string[]): Promise<number> {
  const states = await store.loadStates(users);
  return [...states.values()].reduce((sum, state) => sum + state.appliedTotal, 0);
}

async function stop(t: { context: StreamJobContext }, stream: StreamJob): Promise<void> {
  await stream.stop();
  t.context.jobs.splice(t.context.jobs.indexOf(stream), 1);
}

/** What dedup and the model see of a state: its window (coordinates included), marks (in any order) and count. */
function essence(state: UserState | undefined) {
  return state && { window: state.window, highWater: [...state.highWater].sort(), appliedTotal: state.appliedTotal };
}

test("a sink connector's files with Kafka coordinates and the stream drop each other's events: every event applied once, as a pure stream applies them", async (t) => {
  const topics = uniqueTopics();
  await ensureTopics(t.context.kafka, [
    { topic: topics.play, partitions: 2 },
    { topic: topics.search, partitions: 2 },
    { topic: topics.deadLetter, partitions: 1 },
  ]);
  const name = unique('u');
  const users = [...Array(6).keys()].map((u) => `${name}-${u}`);
  const start = Date.now() - 5 * HOUR;
  const [a, b] = [history(name, 6, 8, start), history(name, 6, 8, start + HOUR)];
  const all = a.length + b.length;

  // The stream applies A in two prefixes (one for the backfill with coordinates, one without), then stops; B arrives.
  const [withCoordinates, withoutCoordinates] = [unique('bfs'), unique('bfs')];
  const groups = { [withCoordinates]: unique('group'), [withoutCoordinates]: unique('group') };
  await produce(t, topics, a);
  for (const keyPrefix of [withCoordinates, withoutCoordinates]) {
    const stream = await job(t, { topics, groupId: groups[keyPrefix]!, keyPrefix });
    await eventually(async () => ((await totals(stream.store, users)) === a.length ? true : undefined), 'A streamed');
    await stop(t, stream);
  }
  await produce(t, topics, b);

  // The sink has written A and B, each record with its topic, partition and offset.
  const dir = await tempDir();
  const paths = await writeSinkFiles(dir, await consumeAll(t, topics, all));
  t.is(paths.length, 4, 'a file per topic-partition');

  const summary = await fileBackfill(paths, withCoordinates, topics);
  t.is(summary.stoppedBy, 'complete');
  t.is(summary.events, all);
  t.is(summary.duplicates, a.length, 'A was applied by the stream: not again');
  t.is(summary.applied, b.length);
  const resumed = await job(t, { topics, groupId: groups[withCoordinates]!, keyPrefix: withCoordinates });
  await eventually(async () => (resumed.consumer.stats.messages >= b.length ? true : undefined), 'B streamed');
  t.is(resumed.consumer.stats.duplicates, b.length, 'the stream drops what the backfill applied');
  t.is(resumed.consumer.stats.applied, 0);
  t.is(await totals(resumed.store, users), all, 'every event applied exactly once');

  // A pure stream of the same topics: the same windows (coordinates included), marks and counts.
  const reference = await job(t, { topics, groupId: unique('group'), keyPrefix: unique('bfs') });
  await eventually(async () => ((await totals(reference.store, users)) === all ? true : undefined), 'reference stream');
  const [mixed, pure] = await Promise.all([resumed.store.loadStates(users), reference.store.loadStates(users)]);
  for (const user of users) t.deepEqual(essence(mixed.get(user)), essence(pure.get(user)), user);

  // Without the flag the sink's lines are bad records (unknown fields)...
  const refused = await fileBackfill(paths, withoutCoordinates, topics, { coordinates: false });
  t.is(refused.invalid, all);
  t.is(refused.applied, 0);
  // ... and the same events as plain lines are their own source: A lands twice, and B again when the stream resumes.
  const plain = join(dir, 'plain.jsonl');
  await writeFile(plain, [...a, ...b].map((record) => eventToJson(record)).join('\n') + '\n');
  const twice = await fileBackfill([plain], withoutCoordinates, topics, { coordinates: false });
  t.is(twice.duplicates, 0);
  t.is(twice.applied, all);
  const again = await job(t, { topics, groupId: groups[withoutCoordinates]!, keyPrefix: withoutCoordinates });
  await eventually(async () => (again.consumer.stats.messages >= b.length ? true : undefined), 'B streamed after the plain file backfill');
  t.is(again.consumer.stats.applied, b.length, 'the stream applies B again');
  t.is(await totals(again.store, users), 2 * all, 'every event counted twice');
  const doubled = await again.store.loadStates(users);
  for (const user of users) t.is(doubled.get(user)!.window.length, 2 * pure.get(user)!.window.length, `${user}: each event twice in the window`);
});

// The rest needs no broker: the coordinates are the files'.
const TOPICS = { play: 'sink.plays', search: 'sink.searches' };

/** Sink records of `events`, partitioned by user as Kafka's partitioner would (the user number mod 2), offsets counted per topic-partition. */
function sinkRecords(events: readonly EventRecord[]): SinkRecord[] {
  const next = new Map<string, number>();
  return events.map((record) => {
    const topic = record.kind === 'play' ? TOPICS.play : TOPICS.search;
    const partition = Number(record.event.userId.slice(record.event.userId.lastIndexOf('-') + 1)) % 2;
    const offset = next.get(`${topic}:${partition}`) ?? 0;
    next.set(`${topic}:${partition}`, offset + 3); // gaps, as compaction or transaction markers leave them
    return { topic, partition, offset, record };
  });
}

async function scan(prefix: string): Promise<number> {
  const redis = createRedisClient({ url: REDIS_URL });
  await waitForRedis(redis);
  const [, keys] = await redis.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
  redis.disconnect();
  return keys.length;
}

test('a record without coordinates, with a non-integer offset, another topic or a type its topic does not hold is a bad record; --fail-fast stops at it', async (t) => {
  const dir = await tempDir();
  const name = unique('u');
  const [first, second] = sinkRecords(history(name, 2, 2, Date.now() - HOUR)).filter((r) => r.record.kind === 'play');
  const good = sinkLine(first!);
  const lines = [
    good,
    good.replace(`,"${OFFSET}":${first!.offset}`, ''),
    good.replace(`"${OFFSET}":${first!.offset}`, `"${OFFSET}":1.5`),
    good.replace(`"${PARTITION}":${first!.partition}`, `"${PARTITION}":"one"`),
    good.replace(`"${TOPIC}":"${TOPICS.play}"`, `"${TOPIC}":"other.plays"`),
    sinkLine(second!, true).replace('"type":"play"', '"type":"search"'),
  ];
  const path = join(dir, 'bad.jsonl');
  await writeFile(path, lines.join('\n') + '\n');
  const bad: BadRecord[] = [];
  const summary = await fileBackfill([path], unique('bfs'), TOPICS, { onInvalid: (record) => bad.push(record) });
  t.is(summary.applied, 1);
  t.is(summary.invalid, 5);
  t.deepEqual(
    bad.map(({ where, reason, detail }) => ({ where, reason, detail })),
    [
      { where: 'bad.jsonl:2', reason: 'MISSING_KAFKA_COORDINATES', detail: `no "${OFFSET}" field (the record's Kafka offset)` },
      { where: 'bad.jsonl:3', reason: 'INVALID_KAFKA_COORDINATES', detail: `"${OFFSET}" must be a whole number 0..2^53-1 (got 1.5)` },
      { where: 'bad.jsonl:4', reason: 'INVALID_KAFKA_COORDINATES', detail: `"${PARTITION}" must be a whole number 0..2147483647 (got "one")` },
      {
        where: 'bad.jsonl:5',
        reason: 'INVALID_KAFKA_COORDINATES',
        detail: `"${TOPIC}" is "other.plays", not the plays topic "sink.plays" or the searches topic "sink.searches" (--plays-topic, --searches-topic)`,
      },
      { where: 'bad.jsonl:6', reason: 'INVALID_KAFKA_COORDINATES', detail: `"type" is "search", but topic "sink.plays" holds play events` },
    ].map((expected) => ({ ...expected, where: expected.where.replace('bad.jsonl', displayName(path)) })),
  );
  const keyPrefix = unique('bfs');
  const stopped = await fileBackfill([path], keyPrefix, TOPICS, { failFast: true });
  t.is(stopped.stoppedBy, 'bad-record');
  t.is(await scan(keyPrefix), 0, 'the step with the bad record is not applied');
});

test('files of one partition out of offset order, or overlapping, are refused before anything is written; --since/--until too', async (t) => {
  const dir = await tempDir();
  const name = unique('u');
  const records = sinkRecords(history(name, 1, 20, Date.now() - HOUR)).filter((r) => r.record.kind === 'play');
  const [early, late] = [records.slice(0, 8), records.slice(8)];
  const [earlyPath, latePath] = [join(dir, 'early.jsonl'), join(dir, 'late.jsonl')];
  await writeFile(earlyPath, early.map((r) => sinkLine(r)).join('\n') + '\n');
  await writeFile(latePath, late.map((r) => sinkLine(r)).join('\n') + '\n');
  const keyPrefix = unique('bfs');

  const error = await t.throwsAsync(fileBackfill([latePath, earlyPath], keyPrefix, TOPICS), { instanceOf: TasteError });
  t.is(error.code, ErrorCodes.EVENT_INVALID);
  t.true(
    error.message.startsWith(`${displayName(earlyPath)}:1: sink.plays[0] offset 0 comes after offset ${late.at(-1)!.offset} (${displayName(latePath)}:${late.length}).`),
    error.message,
  );
  t.regex(error.message, /Nothing was written$/);
  const overlapping = join(dir, 'overlap.jsonl');
  await writeFile(overlapping, records.slice(5, 10).map((r) => sinkLine(r)).join('\n') + '\n');
  await t.throwsAsync(fileBackfill([earlyPath, overlapping], keyPrefix, TOPICS), { message: new RegExp(`offset ${records[5]!.offset} comes after offset ${early.at(-1)!.offset}`) });
  const shuffled = join(dir, 'shuffled.jsonl');
  await writeFile(shuffled, [late[0]!, early[0]!].map((r) => sinkLine(r)).join('\n') + '\n');
  await t.throwsAsync(fileBackfill([shuffled], keyPrefix, TOPICS), { message: /shuffled\.jsonl:2: sink\.plays\[0\] offset 0 comes after/ });
  await t.throwsAsync(fileBackfill([earlyPath, latePath], keyPrefix, TOPICS, { untilMs: Date.now() }), { instanceOf: TasteError, message: /--since\/--until/ });
  t.is(await scan(keyPrefix), 0, 'nothing written');

  const summary = await fileBackfill([earlyPath, latePath], keyPrefix, TOPICS);
  t.is(summary.applied, records.length, 'in order, the same files are applied');
});

test('Parquet rows carry the coordinates as columns (no type column): the same state as the JSONL lines; shards and a killed, resumed run write the same bytes', async (t) => {
  const dir = join(await tempDir(), 'sink');
  await mkdir(dir);
  const name = unique('u');
  const events = history(name, 40, 12, Date.now() - 10 * HOUR);
  const records = sinkRecords(events);
  // A sink's files: one topic-partition each, in offset order; plays as Parquet, searches as JSONL.
  const jsonlPrefix = unique('bfs');
  const all = join(dir, '..', 'all.jsonl'); // not in the sink's folder, which the CLI reads below
  await writeFile(all, records.map((r) => sinkLine(r)).join('\n') + '\n');
  t.is((await fileBackfill([all], jsonlPrefix, TOPICS)).applied, events.length);

  const paths: string[] = [];
  for (const topic of [TOPICS.play, TOPICS.search]) {
    for (const partition of [0, 1]) {
      const part = records.filter((r) => r.topic === topic && r.partition === partition);
      const path = join(dir, `${topic}+${partition}+0000000000.${topic === TOPICS.play ? 'parquet' : 'json'}`);
      if (topic === TOPICS.play) {
        await writeParquet(
          path,
          part.map((r) => r.record),
          50,
          {
            columns: [
              { name: TOPIC, data: part.map((r) => r.topic), type: 'STRING' },
              { name: PARTITION, data: part.map((r) => r.partition), type: 'INT32' },
              { name: OFFSET, data: part.map((r) => BigInt(r.offset)), type: 'INT64' },
            ],
            omit: ['type'],
          },
        );
      } else {
        await writeFile(path, part.map((r) => sinkLine(r)).join('\n') + '\n');
      }
      paths.push(path);
    }
  }
  const parquetPrefix = unique('bfs');
  t.is((await fileBackfill(paths, parquetPrefix, TOPICS)).applied, events.length);
  const { metadata } = await loadModelBundle(DEFAULT_MODEL_DIR);
  const redis = createRedisClient({ url: REDIS_URL });
  await waitForRedis(redis);
  const store = (keyPrefix: string) => new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets, keyPrefix });
  const users = [...Array(40).keys()].map((u) => `${name}-${u}`);
  const [fromJsonl, fromMixed] = await Promise.all([store(jsonlPrefix).loadStates(users), store(parquetPrefix).loadStates(users)]);
  for (const user of users) t.deepEqual(essence(fromMixed.get(user)), essence(fromJsonl.get(user)), user);

  // Through the CLI: unsharded; two shards (shard 1 killed after two steps, then resumed); the same bytes.
  const args = ['backfill', '--kafka-coordinates', 'fields', '--plays-topic', TOPICS.play, '--searches-topic', TOPICS.search, '--chunk-size', '50', '--batch-size', '8', dir];
  const unsharded = unique('bfs');
  const whole = await taste([...args, '--key-prefix', unsharded], cliEnv);
  t.is(whole.code, 0, whole.stderr);
  for (const index of [0, 1]) {
    const checkpoint = join(dir, '..', `shard-${index}.ckpt`);
    const shardArgs = [...args, '--key-prefix', `${unsharded}-sharded`, '--shard', `${index}/2`, '--checkpoint', checkpoint];
    if (index === 1) {
      const killer = killAfterSteps(checkpoint, 2);
      const killed = await taste(shardArgs, cliEnv, killer.onSpawn);
      t.is(killed.signal, 'SIGKILL', `killed mid-way: ${killed.stdout}${killed.stderr}`);
    }
    const run = await taste(shardArgs, cliEnv);
    t.is(run.code, 0, run.stderr);
  }
  const [one, two] = await Promise.all([stateDigest(redis, unsharded), stateDigest(redis, `${unsharded}-sharded`)]);
  t.true(one.keys >= 40, `${one.keys} keys for 40 users`);
  t.deepEqual(two, one);
  redis.disconnect();
});

test('taste backfill --help lists the coordinate flags; --since/--until or --kafka with them exit 2, saying why', async (t) => {
  const help = await taste(['backfill', '--help']);
  t.is(help.code, 0);
  for (const flag of ['--kafka-coordinates', '--kafka-topic-field', '--kafka-partition-field', '--kafka-offset-field']) t.true(help.stdout.includes(flag), flag);
  const since = await taste(['backfill', '--kafka-coordinates', 'fields', '--since', '2026-01-01T00:00:00Z', 'sink.jsonl'], cliEnv);
  t.is(since.code, 2);
  t.regex(since.stderr, /--kafka-coordinates fields does not take --since\/--until/);
  const kafka = await taste(['backfill', '--kafka', '--kafka-coordinates', 'fields'], cliEnv);
  t.is(kafka.code, 2);
  t.regex(kafka.stderr, /--kafka-coordinates is for files/);
  const same = await taste(['backfill', '--kafka-coordinates', 'fields', '--kafka-offset-field', 'kafka_topic', 'sink.jsonl'], cliEnv);
  t.is(same.code, 2);
  t.regex(same.stderr, /must be three different names/);
});
