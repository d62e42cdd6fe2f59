import anyTest, { type TestFn } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createProducer, ensureTopics, type Kafka } from '../../consumers/kafka.js';
import { FeatureStore } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { loadModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR, eventually, KAFKA_BROKERS, REDIS_URL, unique } from '../helpers/environment.js';
import { play, search, sendPlays, sendSearches, testKafka, uniqueTopics } from '../helpers/pipeline.js';

// Scale-out as production runs it: three `taste consume` processes (not jobs in one process:
// separate event loops, workers and Kafka clients) in one consumer group over 12-partition
// topics. Nothing may be lost or applied twice, every member must take a share, and the group
// must end with no lag once the members are stopped with SIGTERM, as Kubernetes stops pods.

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const PARTITIONS = 12;
const MEMBERS = 3;
const USERS = 300;
const EVENTS_PER_USER = 10; // ≤ the model's window (50), so the window holds every event sent
const PLAYS_PER_USER = 7;

interface Member {
  process: ChildProcess;
  lines: Record<string, unknown>[];
  exit: Promise<number | null>;
}

const test = anyTest as TestFn<{ kafka: Kafka; members: Member[] }>;

test.before((t) => {
  t.context = { kafka: testKafka(), members: [] };
});

test.after.always((t) => {
  for (const member of t.context.members) if (member.process.exitCode === null) member.process.kill('SIGKILL');
});

function startMember(args: string[]): Member {
  // Three processes on one host: no fixed HTTP port each (metrics/health listener, where the
  // CLI has one; an env var, so a CLI without it just ignores it).
  const env = { ...process.env, TASTE_METRICS_PORT: '0' };
  const child = spawn(process.execPath, [CLI, 'consume', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: 'unparsed', line });
    }
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { process: child, lines, exit };
}

test('three consume processes share 12 partitions: nothing lost, nothing applied twice, no lag left', async (t) => {
  t.timeout(90_000);
  const started = Date.now();
  const { kafka } = t.context;
  const topics = uniqueTopics();
  const groupId = unique('scale-group');
  const keyPrefix = unique('scale');
  await ensureTopics(kafka, [
    { topic: topics.play, partitions: PARTITIONS },
    { topic: topics.search, partitions: PARTITIONS },
    { topic: topics.deadLetter, partitions: 1 },
  ]);

  const args = [
    `--brokers=${KAFKA_BROKERS.join(',')}`, `--redis-url=${REDIS_URL}`, `--model=${DEFAULT_MODEL_DIR}`,
    `--plays-topic=${topics.play}`, `--searches-topic=${topics.search}`, `--dead-letter-topic=${topics.deadLetter}`,
    `--group-id=${groupId}`, `--key-prefix=${keyPrefix}`, `--topic-partitions=${PARTITIONS}`,
    // Three processes on a small machine: one ONNX thread each.
    '--intra-op-threads=1', '--log-level=info',
  ];
  for (let i = 0; i < MEMBERS; i++) t.context.members.push(startMember(args));
  const { members } = t.context;

  // Produce only once the group is stable with all three, so each member owns partitions.
  const admin = kafka.admin();
  await admin.connect();
  try {
    await eventually(async () => {
      const exited = members.find((m) => m.process.exitCode !== null);
      if (exited) throw new Error(`a consumer exited early: ${JSON.stringify(exited.lines.slice(-5))}`);
      const { groups } = await admin.describeGroups([groupId]);
      return groups[0]?.state === 'Stable' && groups[0].members.length === MEMBERS ? true : undefined;
    }, 'a stable group of three', 40_000, 250);
    const joinedMs = Date.now() - started;

    const base = Date.now() - 3_600_000;
    const users = Array.from({ length: USERS }, (_, u) => `scale-user-${u}`);
    const sentTimes = new Map(users.map((user) => [user, [] as number[]]));
    const plays = [];
    const searches = [];
    for (const [u, user] of users.entries()) {
      for (let e = 0; e < EVENTS_PER_USER; e++) {
        const time = base + u * 1000 + e; // unique per user: the window can be compared exactly
        sentTimes.get(user)!.push(time);
        if (e < PLAYS_PER_USER) plays.push(play(user, `taste:track:${2 + ((u * 7 + e) % 900)}`, time));
        else searches.push(search(user, `query ${u} ${e}`, time));
      }
    }
    const producer = createProducer(kafka);
    await producer.connect();
    for (let i = 0; i < plays.length; i += 500) await sendPlays(producer, topics.play, plays.slice(i, i + 500));
    for (let i = 0; i < searches.length; i += 500) await sendSearches(producer, topics.search, searches.slice(i, i + 500));
    await producer.disconnect();

    const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
    const redis = createRedisClient({ url: REDIS_URL });
    await waitForRedis(redis);
    const store = new FeatureStore({ redis, modelVersion: bundle.metadata.modelVersion, queryTokens: bundle.metadata.queryTokens, keyPrefix });
    try {
      await eventually(async () => {
        const found = await store.readEmbeddings(users);
        return found.every((embedding) => embedding?.eventsInWindow === EVENTS_PER_USER) ? true : undefined;
      }, `all ${USERS} users with ${EVENTS_PER_USER} events`, 45_000, 250);
      const appliedMs = Date.now() - started;

      // Exactly the events sent: same event times, and no source record twice.
      const states = await store.loadStates(users);
      for (const user of users) {
        const window = states.get(user)!.window;
        t.deepEqual(window.map((event) => event.eventTimeMs).sort((a, b) => a - b), sentTimes.get(user), user);
        t.is(new Set(window.map((event) => `${event.stream}:${event.partition}:${event.offset}`)).size, EVENTS_PER_USER, user);
      }

      // Stop the way Kubernetes does; each member commits and reports its final stats.
      for (const member of members) member.process.kill('SIGTERM');
      const codes = await Promise.all(members.map((member) => member.exit));
      t.deepEqual(codes, [0, 0, 0]);
      const stats = members.map((member) => member.lines.find((line) => line.msg === 'stopped') as Record<string, number> | undefined);
      t.true(stats.every(Boolean), 'every member logged its final stats');
      for (const [i, stat] of stats.entries()) t.true(stat!.messages! > 0, `member ${i} processed ${stat!.messages} messages`);
      const sum = (field: string) => stats.reduce((total, stat) => total + (stat![field] ?? 0), 0);
      t.is(sum('applied'), USERS * EVENTS_PER_USER, 'every event applied once across the group');
      t.is(sum('deadLettered'), 0);

      // Committed offsets reach the end of every partition: the group has no lag.
      for (const topic of [topics.play, topics.search]) {
        const ends = await admin.fetchTopicOffsets(topic);
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        t.is(ends.length, PARTITIONS);
        for (const end of ends) {
          const at = committed!.partitions.find((p) => p.partition === end.partition)!.offset;
          const lag = Number(end.high) - (Number(at) < 0 ? Number(end.low) : Number(at));
          t.is(lag, 0, `${topic}[${end.partition}] lag`);
        }
      }
      t.log(
        `group stable after ${joinedMs} ms, all applied after ${appliedMs} ms, stopped after ${Date.now() - started} ms;`,
        `messages per member: ${stats.map((stat) => stat!.messages).join(', ')}`,
      );
    } finally {
      redis.disconnect();
    }
  } finally {
    await admin.disconnect();
  }
});
