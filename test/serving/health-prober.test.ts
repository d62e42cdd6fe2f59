import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { service as healthService } from 'grpc-health-check';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { HealthProber } from '../../serving/health-prober.js';
import { eventually, REDIS_URL } from '../helpers/environment.js';

const NAMES = ['', 'taste.v1.EmbeddingService'];

/** The prober alone on a real gRPC server (port 0), asked through a real health client. */
async function proberOnServer(redis: RedisClient): Promise<{ prober: HealthProber; status: (name: string) => Promise<string>; close: () => void }> {
  const prober = new HealthProber({ redis, serviceNames: NAMES, intervalMs: 200 });
  const server = new grpc.Server();
  prober.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  const Health = grpc.makeClientConstructor(healthService, 'grpc.health.v1.Health');
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const status = (name: string) =>
    new Promise<string>((resolve, reject) => {
      client['Check']!({ service: name }, { deadline: Date.now() + 2000 }, (error: grpc.ServiceError | null, response?: { status: string }) =>
        error ? reject(error) : resolve(response?.status ?? ''),
      );
    });
  return {
    prober,
    status,
    close: () => {
      prober.stop();
      client.close();
      server.forceShutdown();
    },
  };
}

const serving = (status: (name: string) => Promise<string>) => async () => ((await status('')) === 'SERVING' ? true : undefined);

test('NOT_SERVING until started and Redis answers; setServing(false) overrides it; stop() is for good', async (t) => {
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'test-health-prober' });
  await waitForRedis(redis);
  const { prober, status, close } = await proberOnServer(redis);
  try {
    t.deepEqual(await Promise.all(NAMES.map(status)), ['NOT_SERVING', 'NOT_SERVING'], 'before start()');
    prober.start();
    await eventually(serving(status), 'SERVING', 5000);
    t.is(await status('taste.v1.EmbeddingService'), 'SERVING', 'every name');
    prober.setServing(false);
    t.deepEqual(await Promise.all(NAMES.map(status)), ['NOT_SERVING', 'NOT_SERVING']);
    prober.setServing(true);
    t.is(await status(''), 'SERVING');
    prober.stop();
    prober.setServing(true);
    await new Promise((resolve) => setTimeout(resolve, 500)); // more than two probe intervals
    t.deepEqual(await Promise.all(NAMES.map(status)), ['NOT_SERVING', 'NOT_SERVING'], 'after stop(), whatever Redis and setServing say');
  } finally {
    close();
    redis.disconnect();
  }
});

test('a Redis that does not answer keeps NOT_SERVING', async (t) => {
  const redis = createRedisClient({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 100 });
  redis.on('error', () => {}); // reconnect noise; the probe sees the failures as PINGs that fail
  const { prober, status, close } = await proberOnServer(redis);
  try {
    prober.start();
    await new Promise((resolve) => setTimeout(resolve, 700));
    t.is(await status(''), 'NOT_SERVING');
    t.is(await status('taste.v1.EmbeddingService'), 'NOT_SERVING');
  } finally {
    close();
    redis.disconnect();
  }
});
