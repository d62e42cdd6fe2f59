import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLogger, type LogLevel } from '../common/logger.js';
import { pollUntil } from '../common/poll.js';
import { sendErasureRequests } from '../consumers/erasure-requests.js';
import { createKafka, createProducer, ensureTopics } from '../consumers/kafka.js';
import type { ErasureRequest } from '../events/erasure-request.js';
import { isValidUserId } from '../events/user-id.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { readTombstones } from '../featurestore/tombstones.js';
import { kafkaFlags, logFlags, redisFlags } from './common-flags.js';
import { formatHelp, parseFlags, UsageError } from './flags.js';
import { kafkaOptions, parseTime, redisOptions } from './options.js';

const flags = {
  user: { type: 'string', multiple: true, description: 'a user to erase (repeat the flag for several)' },
  'users-file': { type: 'string', env: 'TASTE_ERASE_USERS_FILE', description: 'a file of user ids to erase, one per line (blank lines and # comments are skipped)' },
  'request-time': { type: 'string', env: 'TASTE_ERASE_REQUEST_TIME', default: 'now', description: 'erase events up to this time: "now", ISO 8601 or ms since the epoch (events after it start a fresh profile)' },
  wait: { type: 'boolean', env: 'TASTE_ERASE_WAIT', default: true, description: 'wait until the stream job has applied every request (--no-wait: return once Kafka has them)' },
  'wait-timeout-ms': { type: 'integer', env: 'TASTE_ERASE_WAIT_TIMEOUT_MS', default: 300000, min: 1, description: 'longest the wait may take' },
  'create-topics': { type: 'boolean', env: 'TASTE_CREATE_TOPICS', default: true, description: 'create the erasure topic if it is missing' },
  ...kafkaFlags,
  ...redisFlags,
  ...logFlags,
} as const;

export const eraseHelp = formatHelp(
  'taste erase (--user ID ... | --users-file FILE) [options]',
  [
    'Erases listeners: produces an ErasureRequest per user to the erasure topic, then waits until the stream job',
    '(taste consume) has applied each one: every key of the user is gone, for every model version, and no event',
    'at or before the request time can bring them back. Prints one line per request (user, request id, time).',
    'See docs/erasure.md for the guarantee and its limits (the raw events stay on the topics until retention).',
  ].join('\n'),
  flags,
);

export async function runEraseCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(flags, argv, env);
  if (help) {
    console.log(eraseHelp);
    return 0;
  }
  const userIds = usersToErase(values.user, values['users-file']);
  const requestTimeMs = values['request-time'] === 'now' ? Date.now() : parseTime(values['request-time'], '--request-time');
  const logger = createLogger(values['log-level'] as LogLevel, { component: 'erase' });
  const requests: ErasureRequest[] = userIds.map((userId) => ({ userId, requestTimeMs, requestId: randomUUID() }));

  const kafka = createKafka(kafkaOptions(values, 'taste-erase'), logger);
  const topic = values['erasures-topic'];
  if (values['create-topics']) await ensureTopics(kafka, [{ topic, partitions: values['topic-partitions'] }]);
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let start = 0; start < requests.length; start += 1000) await sendErasureRequests(producer, topic, requests.slice(start, start + 1000));
  } finally {
    await producer.disconnect();
  }
  for (const { userId, requestId } of requests) console.log(`requested  ${userId}  ${requestId}  ${new Date(requestTimeMs).toISOString()}`);
  if (!values.wait) return 0;

  const redis = createRedisClient({ ...redisOptions(values, 'taste-erase') });
  try {
    await waitForRedis(redis);
    let waiting = userIds;
    const started = performance.now();
    let lastReport = started;
    await pollUntil(
      async () => {
        const tombstones = await readTombstones(redis, values['key-prefix'], waiting);
        // Done once the user's tombstone is at least this request's time (a later request also covers it).
        waiting = waiting.filter((_, index) => (tombstones[index]?.atMs ?? -1) < requestTimeMs);
        if (performance.now() - lastReport > 5_000) {
          lastReport = performance.now();
          logger.info('waiting for the stream job to apply the erasures', { done: userIds.length - waiting.length, of: userIds.length });
        }
        return waiting.length === 0 ? true : undefined;
      },
      {
        what: () => `the stream job to apply ${waiting.length} of ${userIds.length} erasures (is taste consume running on ${topic}, with key prefix ${values['key-prefix']}?)`,
        timeoutMs: values['wait-timeout-ms'],
        intervalMs: 200,
      },
    );
    console.log(`erased     ${userIds.length} users in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    redis.disconnect();
  }
  return 0;
}

/** The users of --user and --users-file, each checked, without repeats. */
function usersToErase(fromFlags: readonly string[], file: string | undefined): string[] {
  const users = new Set<string>();
  for (const userId of fromFlags) {
    if (!isValidUserId(userId)) throw new UsageError(`--user "${userId}" is not a user id (1-128 characters of [A-Za-z0-9._:@+=-])`);
    users.add(userId);
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (cause) {
      throw new UsageError(`--users-file ${file} cannot be read: ${(cause as Error).message}`);
    }
    text.split('\n').forEach((line, index) => {
      const userId = line.trim();
      if (userId === '' || userId.startsWith('#')) return;
      if (!isValidUserId(userId)) throw new UsageError(`--users-file ${file}, line ${index + 1}: "${userId.slice(0, 40)}" is not a user id (1-128 characters of [A-Za-z0-9._:@+=-])`);
      users.add(userId);
    });
  }
  if (users.size === 0) throw new UsageError('name the users to erase with --user or --users-file');
  return [...users];
}
