import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import anyTest, { type TestFn } from 'ava';
import { service as healthService } from 'grpc-health-check';
import { createLogger } from '../../common/logger.js';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { createEmbeddingClient, getUserEmbedding, type EmbeddingServiceClient } from '../../serving/client.js';
import { startServingServer, type ServingServer } from '../../serving/server.js';
import { eventually } from '../helpers/environment.js';
import { freePort } from '../reliability/harness.js';

/**
 * A Redis of this test's own (Debian's redis-server, no persistence) that the test kills and
 * restarts: serving must answer UNAVAILABLE while it is gone and recover without a restart.
 */
interface Context {
  port: number;
  /** A holder, not the process: ava gives each test a shallow copy of the context, and the test swaps the process. */
  redisServer: { process?: ChildProcess };
  redis: RedisClient;
  serving: ServingServer;
  client: EmbeddingServiceClient;
  logs: { level: string; msg: string }[];
}

const test = anyTest as TestFn<Context>;

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // redis-server prints this once it accepts connections.
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${seen.slice(-500)}`)));
  });
  child.stdout!.resume();
  return child;
}

async function stopRedis(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

async function healthStatus(address: string): Promise<string> {
  const client = new (grpc.makeClientConstructor(healthService, 'grpc.health.v1.Health'))(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) => {
      client['Check']!({ service: 'taste.v1.EmbeddingService' }, { deadline: Date.now() + 2000 }, (error: grpc.ServiceError | null, response?: { status: string }) =>
        error ? reject(error) : resolve(response?.status ?? ''),
      );
    });
  } finally {
    client.close();
  }
}

async function codeOf(call: Promise<unknown>): Promise<grpc.status> {
  try {
    await call;
    return grpc.status.OK;
  } catch (error) {
    return (error as grpc.ServiceError).code;
  }
}

test.before(async (t) => {
  const port = await freePort();
  const redisServer = { process: await startRedis(port) };
  const redis = createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 });
  redis.on('error', () => {}); // reconnect attempts while the server is killed
  await waitForRedis(redis);
  const store = new FeatureStore({ redis, modelVersion: 'm1', queryTokens: 0 });
  const window = [{ eventTimeMs: 1000, stream: Streams.PLAY, partition: 0, offset: 1, itemId: 9, kind: EventKinds.PLAY, queryTokens: [] }];
  await store.writeStates([{ userId: 'alice', expectedVersion: 0, window, highWater: new Map(), embedding: new Float32Array([1, 0]), updatedMs: 2000, appliedTotal: 1 }]);
  const logs: Context['logs'] = [];
  const logger = createLogger('debug', {}, (line) => logs.push(JSON.parse(line) as Context['logs'][number]));
  const serving = await startServingServer({ redis, service: { stores: [store] }, port: 0, healthProbeIntervalMs: 200, shutdownTimeoutMs: 2000, logger });
  t.context = { port, redisServer, redis, serving, client: createEmbeddingClient(serving.address), logs };
});

test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.serving?.close();
  t.context.redis?.disconnect();
  await stopRedis(t.context.redisServer?.process);
});

test('Redis dies: UNAVAILABLE at once and NOT_SERVING; it comes back: SERVING again, no restart', async (t) => {
  const { client, serving, logs } = t.context;
  await eventually(async () => ((await healthStatus(serving.address)) === 'SERVING' ? true : undefined), 'SERVING', 5000);
  t.deepEqual((await getUserEmbedding(client, { userId: 'alice' })).embedding?.vector, [1, 0]);

  await stopRedis(t.context.redisServer.process);
  for (let i = 0; i < 5; i++) {
    const started = Date.now();
    t.is(await codeOf(getUserEmbedding(client, { userId: 'alice' }, 2000)), grpc.status.UNAVAILABLE);
    t.true(Date.now() - started < 1500, `answered after ${Date.now() - started} ms`);
  }
  await eventually(async () => ((await healthStatus(serving.address)) === 'NOT_SERVING' ? true : undefined), 'NOT_SERVING', 5000);
  t.is(logs.filter((line) => line.msg.startsWith('feature store unavailable')).length, 1, 'one warning per outage, not per request');

  t.context.redisServer.process = await startRedis(t.context.port);
  await eventually(async () => ((await healthStatus(serving.address)) === 'SERVING' ? true : undefined), 'SERVING again', 10_000);
  // Started without persistence, so alice is gone: a clean NOT_FOUND proves reads work again.
  t.is(await codeOf(getUserEmbedding(client, { userId: 'alice' })), grpc.status.NOT_FOUND);
  t.true(logs.some((line) => line.msg === 'feature store answers again'));
});
