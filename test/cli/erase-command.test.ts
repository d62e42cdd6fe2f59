import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProducer, ensureTopics } from '../../consumers/kafka.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { eventually, KAFKA_BROKERS, REDIS_URL, unique } from '../helpers/environment.js';
import { play, sendPlays, testKafka } from '../helpers/pipeline.js';

// `taste erase` against a running `taste consume`, both as processes, on the real Kafka and Redis.

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const ENV = { TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_REDIS_URL: REDIS_URL, TASTE_LOG_LEVEL: 'warn' };
const DAY_MS = 86_400_000;

function taste(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, ...ENV } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function topicArgs(id: string): string[] {
  return ['--plays-topic', `${id}.plays`, '--searches-topic', `${id}.searches`, '--dead-letter-topic', `${id}.dlq`, '--erasures-topic', `${id}.erasures`, '--key-prefix', id];
}

test('taste erase waits until the running consumer has erased the users; the tombstone lives the topics\' retention plus 7 days', async (t) => {
  t.timeout(120_000);
  const id = unique('erase-cli');
  const kafka = testKafka();
  // The event topics keep records 3 days: the derived tombstone lifetime is 3 + 7 days.
  const admin = kafka.admin();
  await admin.connect();
  const eventTopics = [`${id}.plays`, `${id}.searches`];
  // kafkajs' own waitForLeaders gives up on a new topic's first UNKNOWN_TOPIC_OR_PARTITION (it failed CI
  // once); ensureTopics finds them created and waits for their leaders the patient way.
  await admin.createTopics({
    waitForLeaders: false,
    topics: eventTopics.map((topic) => ({ topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: String(3 * DAY_MS) }] })),
  });
  await admin.disconnect();
  await ensureTopics(kafka, eventTopics.map((topic) => ({ topic, partitions: 2 })));
  const consumer: ChildProcess = spawn(process.execPath, [CLI, 'consume', ...topicArgs(id), '--group-id', id, '--metrics-port', '0', '--intra-op-threads', '1'], {
    cwd: REPO,
    env: { ...process.env, ...ENV },
    stdio: 'ignore',
  });
  const redis = createRedisClient({ url: REDIS_URL });
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  t.teardown(async () => {
    consumer.kill('SIGKILL');
    await producer.disconnect();
    redis.disconnect();
  });
  await producer.connect();
  await waitForRedis(redis);
  const [first, second, third] = [unique('u'), unique('u'), unique('u')];
  await sendPlays(producer, `${id}.plays`, [first, second, third].map((user) => play(user, 'taste:track:7', Date.now() - 60_000)));
  const modelVersion = await eventually(async () => {
    const keys = await redis.keys(`${id}:{${third}}:*`);
    return keys.find((key) => !key.endsWith(':versions'))?.split(':').pop();
  }, 'the users applied', 90_000);

  const dir = mkdtempSync(join(tmpdir(), 'taste-erase-'));
  const usersFile = join(dir, 'users.txt');
  writeFileSync(usersFile, `# asked on 2026-12-01\n${second}\n\n${first}\n`);
  const started = Date.now();
  const run = await taste(['erase', ...topicArgs(id), '--user', first, '--users-file', usersFile, '--wait-timeout-ms', '60000']);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, new RegExp(`requested  ${first}  [0-9a-f-]{36}  `));
  t.regex(run.stdout, new RegExp(`requested  ${second}  `));
  t.regex(run.stdout, /erased {5}2 users in /);

  for (const user of [first, second]) {
    t.deepEqual(await redis.keys(`${id}:{${user}}:*`), [`${id}:{${user}}:erased`], user);
    const [requestTimeMs] = (await redis.get(`${id}:{${user}}:erased`))!.split(';').map(Number);
    t.true(requestTimeMs! >= started - 1000 && requestTimeMs! <= Date.now());
    const expiresAt = Date.now() + (await redis.pttl(`${id}:{${user}}:erased`));
    t.true(Math.abs(expiresAt - (requestTimeMs! + 10 * DAY_MS)) < 5_000, `expires ${new Date(expiresAt).toISOString()}`);
  }
  t.truthy(await redis.exists(`${id}:{${third}}:${modelVersion}`), 'the user not named keeps their state');
});

test('taste erase names a bad user id and its line, and a wait with no consumer times out with its code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'taste-erase-'));
  const usersFile = join(dir, 'users.txt');
  writeFileSync(usersFile, 'good-user\nbad user\n');
  const bad = await taste(['erase', '--users-file', usersFile]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /users\.txt, line 2: "bad user" is not a user id/);

  const id = unique('erase-cli');
  const waited = await taste(['erase', ...topicArgs(id), '--user', 'nobody-consumes', '--wait-timeout-ms', '1500']);
  t.is(waited.code, 1);
  t.regex(waited.stderr, /timed out after 1500 ms waiting for the stream job to apply 1 of 1 erasures .*TASTE_TIMEOUT, retrying may help/);
  t.regex(waited.stdout, /requested  nobody-consumes  /, 'the request was sent: the consumer will apply it when it runs');
});
