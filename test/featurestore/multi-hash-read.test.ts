import anyTest, { type TestFn } from 'ava';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { isScriptRefusal, MultiHashReader, unpackRows } from '../../featurestore/multi-hash-read.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';

// Against the real Redis of the store tests: the single server, or the Cluster when
// TASTE_TEST_REDIS_CLUSTER_URL is set (scripts/test-deploy.sh runs this file on both).
interface Context {
  redis: RedisClient;
  prefix: string;
}
const test = anyTest as TestFn<Context>;
const target = storeTarget();

test.before(async (t) => {
  const redis = createRedisClient({ url: target.url, cluster: target.cluster });
  await waitForRedis(redis);
  t.context = { redis, prefix: unique('multiread') };
});

test.after.always(async (t) => {
  t.context.redis?.disconnect();
});

const FIELDS = ['emb', 'upd', 'gone'];

/** Hashes of users in many slots (each user id is a hash tag, as the store's keys are), some absent. */
async function seed(redis: RedisClient, prefix: string, count: number): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, i) => `${prefix}:{user-${i}}:m1`);
  await Promise.all(
    keys.map((key, i) => {
      if (i % 7 === 3) return undefined; // no hash at all
      const binary = Buffer.from([0xff, 0xff, 0xff, 0xff, i & 0xff, 0x00, 0x0a, 0x0d]); // the absent marker's bytes, NUL, CR/LF
      return redis.hset(key, 'emb', i % 5 === 0 ? Buffer.alloc(0) : binary, 'upd', String(1_764_000_000_000 + i));
    }),
  );
  return keys;
}

test(`${target.name}: a batch reads what one HMGET per hash reads, absent hashes and fields as null, binary values intact`, async (t) => {
  const { redis, prefix } = t.context;
  const keys = await seed(redis, `${prefix}:a`, 60);
  const expected = await Promise.all(keys.map((key) => redis.hmgetBuffer(key, ...FIELDS)));
  const reader = new MultiHashReader(redis);
  const rows = await reader.read([...keys, keys[0]!], FIELDS);
  t.deepEqual(rows, [...expected, expected[0]!], 'the same values in key order, a repeated key read twice');
  t.true(reader.usesScript);
  t.true(expected.some((row) => row[0] === null) && expected.some((row) => row[0]?.length === 0), 'the seed has absent and empty values');
});

test(`${target.name}: a batch goes as one script per node, not an HMGET per hash; a few keys go as HMGETs`, async (t) => {
  const { redis, prefix } = t.context;
  const keys = await seed(redis, `${prefix}:b`, 60);
  const counted = countingHmget(redis);
  const reader = new MultiHashReader(counted.redis);
  await reader.read(keys, FIELDS);
  t.is(counted.calls(), 0, 'no HMGET from the client for 60 keys');
  await reader.read(keys.slice(0, 2), FIELDS);
  t.is(counted.calls(), 2, 'two keys: one HMGET each');
});

test('unpackRows refuses a reply that is cut short or longer than the rows it should hold', (t) => {
  const value = (bytes: number[]) => Buffer.concat([Buffer.from(Uint32Array.of(bytes.length).buffer), Buffer.from(bytes)]);
  const absent = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  const packed = Buffer.concat([value([1, 2]), absent, value([]), value([9])]);
  t.deepEqual(unpackRows(packed, 2, 2), [
    [Buffer.from([1, 2]), null],
    [Buffer.alloc(0), Buffer.from([9])],
  ]);
  t.is(unpackRows(packed.subarray(0, packed.length - 1), 2, 2), undefined, 'cut inside a value');
  t.is(unpackRows(Buffer.concat([packed, absent]), 2, 2), undefined, 'a value too many');
  t.is(unpackRows(packed, 3, 2), undefined, 'a row too few');
});

/** The same client, with its HMGETs counted (every other command untouched). */
function countingHmget(redis: RedisClient): { redis: RedisClient; calls: () => number } {
  let calls = 0;
  const counted = new Proxy(redis, {
    get(target, property, receiver) {
      if (property === 'hmgetBuffer') {
        return (...args: Parameters<RedisClient['hmgetBuffer']>) => {
          calls++;
          return target.hmgetBuffer(...args);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { redis: counted, calls: () => calls };
}

test('errors that every later call would get give the script up (no permission, no EVAL, a Redis 6 that cannot compile it); others do not', (t) => {
  // The messages as Redis 6 and 7 send them (scripting.c, acl.c).
  t.true(isScriptRefusal(new Error("NOPERM this user has no permissions to run the 'evalsha' command")));
  t.true(isScriptRefusal(new Error("ERR unknown command 'EVALSHA', with args beginning with: ")));
  t.true(isScriptRefusal(new Error("ERR Error compiling script (new function): user_script:1: unexpected symbol near '#'")));
  t.false(isScriptRefusal(new Error('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.')));
  t.false(isScriptRefusal(new Error('LOADING Redis is loading the dataset in memory')));
  t.false(isScriptRefusal(new Error('OOM command not allowed when used memory > maxmemory')));
});
