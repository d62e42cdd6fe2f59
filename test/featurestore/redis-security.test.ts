import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { pollUntil } from '../../common/poll.js';
import { rolloutKey, replicasKey } from '../../featurestore/rollout-state.js';
import { DefaultVersionWatcher } from '../../serving/default-version-watcher.js';
import { EmbeddingService } from '../../serving/embedding-service.js';
import { addQualitySamples, readQualityTotals } from '../../featurestore/live-quality.js';
import { FeatureStore, type StateUpdate } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { generateCertificates } from '../helpers/certificates.js';
import { unique } from '../helpers/environment.js';
import { freePort, portAnswers } from '../reliability/harness.js';

// Real redis-server processes with real TLS and real ACLs; only the certificates are made up.

async function startRedis(t: { teardown(fn: () => void): void }, args: string[], port: number): Promise<void> {
  const server = spawn('redis-server', [...args, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  const listening = async () => ((await portAnswers(port)) ? true : undefined);
  await pollUntil(listening, { what: `redis-server ${args.join(' ')} to listen on ${port}`, timeoutMs: 10_000, intervalMs: 50 });
}

function update(userId: string): StateUpdate {
  return {
    userId,
    expectedVersion: 0,
    window: [{ eventTimeMs: 1_764_000_000_000, stream: Streams.PLAY, partition: 0, offset: 1, itemId: 2, kind: EventKinds.PLAY, queryTokens: [] }],
    highWater: new Map([['plays:0', 1]]),
    embedding: new Float32Array([0.6, 0.8]),
    updatedMs: 1_764_000_000_500,
    appliedTotal: 1,
  };
}

test('rediss://: the store works over TLS with the CA given; without it, or in plain text, the error says why', async (t) => {
  const certs = await generateCertificates();
  t.teardown(() => rm(certs.dir, { recursive: true, force: true }));
  const port = await freePort();
  await startRedis(t, ['--port', '0', '--tls-port', String(port), '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.caCert, '--tls-auth-clients', 'no'], port);

  const secure = createRedisClient({ url: `rediss://127.0.0.1:${port}`, tlsCa: certs.caPem });
  t.teardown(() => secure.disconnect());
  await waitForRedis(secure);
  const store = new FeatureStore({ redis: secure, modelVersion: 'm1', queryTokens: 8 });
  const user = unique('user');
  t.deepEqual(await store.writeStates([update(user)]), ['written']);
  t.is((await store.readEmbeddings([user]))[0]?.vector.length, 2);

  const untrusted = createRedisClient({ url: `rediss://127.0.0.1:${port}`, commandTimeoutMs: 500 });
  untrusted.on('error', () => undefined);
  t.teardown(() => untrusted.disconnect());
  const refused = await t.throwsAsync(waitForRedis(untrusted, 1500), { instanceOf: TasteError });
  t.is(refused?.code, ErrorCodes.STORE_UNAVAILABLE);
  t.regex(refused!.message, /self[- ]signed certificate|unable to verify|certificate/i);

  const plain = createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 });
  plain.on('error', () => undefined);
  t.teardown(() => plain.disconnect());
  await t.throwsAsync(waitForRedis(plain, 1500), { instanceOf: TasteError });
});

// The least each component needs (docs/deploy.md repeats these lines for production).
const CONSUMER_ACL = 'user taste-consumer on >consumer-pw ~taste:* resetchannels -@all +ping +info +client|setname +hmget +evalsha +eval +hget +hset +get +set +del +sadd +smembers +pexpireat +multi +exec +hincrby +hincrbyfloat +pexpire';
// Serving writes one key only: its entry in the rollout registry (docs/rollout.md).
const SERVING_ACL = 'user taste-serving on >serving-pw %R~taste:* %RW~taste:rollout:replicas resetchannels -@all +ping +info +client|setname +hmget +evalsha +eval +hgetall +hset +hdel';

// What serving needed before the rollout record: a replica still on it must serve, not stay unhealthy.
const OLD_SERVING_ACL = 'user taste-serving-old on >old-pw ~taste:* resetchannels -@all +ping +info +client|setname +hmget';

test('ACL users: the consumer runs with only the commands it uses; the serving user reads embeddings and cannot write', async (t) => {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'taste-acl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const conf = join(dir, 'redis.conf');
  await writeFile(conf, `port ${port}\nuser default off\n${CONSUMER_ACL}\n${SERVING_ACL}\n${OLD_SERVING_ACL}\n`);
  await startRedis(t, [conf], port);

  const consumer = createRedisClient({ url: `redis://taste-consumer:consumer-pw@127.0.0.1:${port}`, connectionName: 'taste-consumer' });
  t.teardown(() => consumer.disconnect());
  await waitForRedis(consumer);
  const writer = new FeatureStore({ redis: consumer, modelVersion: 'm1', queryTokens: 8 });
  const user = unique('user');
  t.deepEqual(await writer.writeStates([update(user)]), ['written']);
  t.is((await writer.loadStates([user])).get(user)!.version, 1);
  t.deepEqual(await writer.writeStates([{ ...update(user), expectedVersion: 1, appliedTotal: 2 }]), ['written'], 'a second write (the script is cached by then) too');
  // Erasure (the consumer applies the erasure topic): the set of versions, the deletes, the tombstone and its lifetime.
  const [erased] = await writer.erase([{ userId: user, requestTimeMs: Date.now(), requestId: 'acl-1' }], { tombstoneLifetimeMs: 60_000 });
  t.deepEqual(erased, { outcome: 'erased', keysDeleted: 1 });
  t.truthy((await writer.loadStates([user])).get(user)!.tombstone, 'the tombstone is read back');
  t.deepEqual(await writer.writeStates([update(unique('user'))]), ['written']);
  // Live quality: the stream adds each step's totals to its hour bucket (one MULTI of HINCRBY, HINCRBYFLOAT, PEXPIRE).
  await addQualitySamples(consumer, 'taste', 'm1', { samples: 2, hits10: 1, ndcg10Sum: 0.5, reciprocalRankSum: 0.75 }, Date.now());
  t.is((await readQualityTotals(consumer, 'taste', ['m1'], Date.now(), 1)).get('m1')!.samples, 2);

  const serving = createRedisClient({ url: `redis://taste-serving:serving-pw@127.0.0.1:${port}`, connectionName: 'taste-serving' });
  t.teardown(() => serving.disconnect());
  await waitForRedis(serving);
  const reader = new FeatureStore({ redis: serving, modelVersion: 'm1', queryTokens: 8 });
  const kept = unique('user');
  t.deepEqual(await writer.writeStates([update(kept)]), ['written']);
  t.deepEqual(Array.from((await reader.readEmbeddings([kept]))[0]!.vector), [Math.fround(0.6), Math.fround(0.8)]);
  const denied = await t.throwsAsync(reader.writeStates([{ ...update(unique('user')) }]));
  t.regex(String(denied?.message), /NOPERM/);
  // A batch is one read-only script (EVALSHA/EVAL); what the script may touch is still the user's key permissions.
  const batch = Array.from({ length: 6 }, () => unique('user'));
  t.deepEqual(await writer.writeStates(batch.map(update)), batch.map(() => 'written'));
  t.deepEqual((await reader.readEmbeddings(batch)).map((embedding) => Array.from(embedding!.vector)), batch.map(() => [Math.fround(0.6), Math.fround(0.8)]));
  await t.throwsAsync(serving.eval(`redis.call('HSET', KEYS[1], 'emb', 'x')`, 1, reader.key(kept)), { message: /NOPERM|No permissions|can't access/ });
  await t.throwsAsync(serving.eval(`return redis.call('HMGET', ARGV[1], 'x')`, 0, 'other:key'), { message: /NOPERM|No permissions|can't access/ });
  await t.throwsAsync(serving.hset(reader.key(kept), 'emb', 'x'), { message: /NOPERM/ });
  await t.throwsAsync(serving.del(reader.key(kept)), { message: /NOPERM/ });
  // The rollout watcher reads the record and registers the replica, and nothing else it may write.
  const service = new EmbeddingService({ stores: [reader, new FeatureStore({ redis: serving, modelVersion: 'm2', queryTokens: 8 })], defaultModelVersion: 'm1' });
  const watcher = new DefaultVersionWatcher({ redis: serving, keyPrefix: 'taste', service, configuredDefault: 'm1', replicaId: 'acl-replica' });
  await consumer.hset(rolloutKey('taste'), 'version', 'm2'); // as an operator's user would
  t.true(await watcher.poll(), 'read the record and registered');
  t.is(service.defaultModelVersion, 'm2');
  t.truthy(await consumer.hget(replicasKey('taste'), 'acl-replica'));
  await watcher.stop();
  t.is(await consumer.hget(replicasKey('taste'), 'acl-replica'), null);
  await t.throwsAsync(serving.hset(rolloutKey('taste'), 'version', 'm2'), { message: /NOPERM/ });
  const old = createRedisClient({ url: `redis://taste-serving-old:old-pw@127.0.0.1:${port}`, connectionName: 'taste-serving-old' });
  t.teardown(() => old.disconnect());
  await waitForRedis(old);
  // Without EVALSHA/EVAL (a serving user made before batched reads) a batch is read by HMGETs.
  const refusals: string[] = [];
  const oldReader = new FeatureStore({ redis: old, modelVersion: 'm1', queryTokens: 8, onBatchReadsRefused: (reason) => refusals.push(reason) });
  for (let round = 0; round < 2; round++) {
    t.deepEqual((await oldReader.readEmbeddings(batch)).map((embedding) => Array.from(embedding!.vector)), batch.map(() => [Math.fround(0.6), Math.fround(0.8)]));
  }
  t.is(refusals.length, 1, 'told once, not per batch');
  t.regex(refusals[0]!, /NOPERM/);
  const oldWatcher = new DefaultVersionWatcher({ redis: old, keyPrefix: 'taste', service, configuredDefault: 'm1' });
  t.false(await oldWatcher.poll());
  t.true(await oldWatcher.firstRead, 'no permission is settled at once: retrying cannot help, so health is not held back');
  await oldWatcher.stop();
  // Keys outside the prefix are out of both users' reach.
  await t.throwsAsync(consumer.hmget('other:key', 'x'), { message: /NOPERM/ });
});
