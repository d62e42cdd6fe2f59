import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import anyTest, { type TestFn } from 'ava';
import type { Redis } from 'ioredis';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { startServingServer, type ServingServer } from '../../serving/server.js';
import { eventually, REDIS_URL, unique } from '../helpers/environment.js';

// Reflection as a client that is not grpc-js sees it: grpcurl (Go, from the Go module proxy via
// scripts/ensure-grpcurl.sh), running the README's own example. Field-by-field agreement with
// protoc is training/tests/test_grpc_reflection.py.

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

function installedGrpcurl(): string | undefined {
  try {
    return execFileSync('bash', [join(REPO, 'scripts/ensure-grpcurl.sh'), '--path'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

const GRPCURL = installedGrpcurl();
// npm test installs grpcurl first; elsewhere the tests skip without it unless this demands it.
const REQUIRED = process.env.TASTE_REQUIRE_GRPCURL === '1';

interface Context {
  redis: RedisClient;
  prefix: string;
  serving: ServingServer;
  grpcurl: (...args: string[]) => Promise<string>;
}

const test = anyTest as TestFn<Context>;
const maybe = GRPCURL || REQUIRED ? test : test.skip;
if (!GRPCURL && !REQUIRED) {
  test.skip('grpcurl is not installed: `bash scripts/ensure-grpcurl.sh` installs it (TASTE_REQUIRE_GRPCURL=1 fails instead of skipping)', () => {});
}

const USER = 'user-2985'; // the README's example user
const vector = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i + 1) / 2);
const EVENT_TIME_MS = 1_764_000_000_123;
const UPDATED_MS = 1_764_000_005_000;

test.before(async (t) => {
  if (!GRPCURL && !REQUIRED) return;
  if (!GRPCURL) throw new Error('TASTE_REQUIRE_GRPCURL=1 but grpcurl is not installed: run bash scripts/ensure-grpcurl.sh');
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'test-reflection' });
  await waitForRedis(redis);
  const prefix = unique('test-reflection');
  const store = new FeatureStore({ redis, modelVersion: 'm1', queryTokens: 4, keyPrefix: prefix });
  const window = [{ eventTimeMs: EVENT_TIME_MS, stream: Streams.PLAY, partition: 0, offset: 7, itemId: 12, kind: EventKinds.PLAY, queryTokens: [] }];
  const written = await store.writeStates([
    { userId: USER, expectedVersion: 0, window, highWater: new Map([['taste.plays.v1:0', 7]]), embedding: vector, updatedMs: UPDATED_MS, appliedTotal: 1 },
  ]);
  t.deepEqual(written, ['written']);
  const serving = await startServingServer({ redis, service: { stores: [store] }, port: 0, healthProbeIntervalMs: 200, shutdownTimeoutMs: 2000 });
  const grpcurl = async (...args: string[]) => (await run(GRPCURL, args, { timeout: 20_000 })).stdout;
  t.context = { redis, prefix, serving, grpcurl };
});

test.after.always(async (t) => {
  const { redis, prefix, serving } = t.context ?? {};
  await serving?.close();
  if (redis) {
    const keys: string[] = [];
    for await (const batch of (redis as Redis).scanStream({ match: `${prefix}:*`, count: 1000 })) keys.push(...(batch as string[]));
    if (keys.length > 0) await Promise.all(keys.map((key) => redis.del(key)));
    redis.disconnect();
  }
});

/** The grpcurl command lines of the README's gRPC API section, exactly as written there. */
async function readmeGrpcurlCommands(): Promise<string[]> {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## gRPC API'), readme.indexOf('\n## ', readme.indexOf('## gRPC API') + 1));
  return section.split('\n').filter((line) => line.startsWith('grpcurl '));
}

maybe("the README's grpcurl example answers with the stored embedding", async (t) => {
  const commands = (await readmeGrpcurlCommands()).filter((line) => line.includes('GetUserEmbedding'));
  t.is(commands.length, 1, 'the README shows one GetUserEmbedding example');
  // Only the address changes: the server listens on a free port, not 50051.
  const command = commands[0]!.replace(/^grpcurl /, `'${GRPCURL}' `).replace('127.0.0.1:50051', t.context.serving.address);
  t.not(command, commands[0]);
  const { stdout } = await run('bash', ['-c', command], { timeout: 20_000 });
  const { embedding } = JSON.parse(stdout) as { embedding: Record<string, unknown> };
  t.is(embedding.userId, USER);
  t.is(embedding.modelVersion, 'm1');
  t.deepEqual(Float32Array.from(embedding.vector as number[]), vector);
  t.is(embedding.dimension, vector.length);
  t.is(embedding.updatedTimeMs, String(UPDATED_MS)); // protojson writes int64 as a string
  t.is(embedding.lastEventTimeMs, String(EVENT_TIME_MS));
  t.is(embedding.eventsInWindow, 1);
});

maybe('grpcurl describe shows the .proto field names (snake_case)', async (t) => {
  const described = await t.context.grpcurl('-plaintext', t.context.serving.address, 'describe', 'taste.v1.GetUserEmbeddingRequest');
  t.regex(described, /^\s*string user_id = 1;$/m);
  t.regex(described, /^\s*string model_version = 2;$/m);
  t.notRegex(described, /userId|modelVersion/);
});

maybe('grpcurl list shows every service, the reflection service included', async (t) => {
  const listed = await t.context.grpcurl('-plaintext', t.context.serving.address, 'list');
  t.deepEqual(listed.trim().split('\n').sort(), [
    'grpc.health.v1.Health',
    'grpc.reflection.v1.ServerReflection',
    'grpc.reflection.v1alpha.ServerReflection',
    'taste.v1.EmbeddingService',
  ]);
});

maybe('the reflected files carry the names the .proto files have', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'taste-reflection-'));
  try {
    const protoset = join(dir, 'set.pb');
    const { address } = t.context.serving;
    // `describe` with no symbol: every listed service, written out with the files it came in.
    await t.context.grpcurl('-plaintext', '-protoset-out', protoset, address, 'describe');
    const set = descriptor.FileDescriptorSet.toObject(descriptor.FileDescriptorSet.decode(await readFile(protoset))) as { file: { name: string }[] };
    t.deepEqual(set.file.map((file) => file.name).sort(), [
      'grpc/health/v1/health.proto',
      'grpc/reflection/v1/reflection.proto',
      'grpc/reflection/v1alpha/reflection.proto',
      'taste/v1/embedding_service.proto',
      'taste/v1/events.proto', // imported by the service (ItemKind)
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

maybe('grpcurl gets health through reflection (the runbook command)', async (t) => {
  const { address } = t.context.serving;
  const status = await eventually(async () => {
    const answer = JSON.parse(await t.context.grpcurl('-plaintext', address, 'grpc.health.v1.Health/Check')) as { status: string };
    return answer.status === 'SERVING' ? answer.status : undefined;
  }, 'SERVING', 10_000, 200);
  t.is(status, 'SERVING');
  const { status: service } = JSON.parse(await t.context.grpcurl('-plaintext', '-d', '{"service":"taste.v1.EmbeddingService"}', address, 'grpc.health.v1.Health/Check')) as { status: string };
  t.is(service, 'SERVING');
});
