import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { FeatureStore } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { batchGetUserEmbeddings, createEmbeddingClient, getUserEmbedding } from '../../serving/client.js';
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR, REDIS_URL, unique } from '../helpers/environment.js';
import { freePort, LONG, rssBytes, sleep } from './harness.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const OVERSIZED = 'x'.repeat(1_100_000);

const CLIENTS = 64;
const CALLS = Number(process.env.TASTE_ABUSE_CALLS ?? (LONG ? 2000 : 150));

test(`${CLIENTS} concurrent clients, 8 of them abusive (oversized, malformed, over-limit, 1 ms): right codes, no crash, bounded memory`, async (t) => {
  t.timeout(LONG ? 10 * 60_000 : 2 * 60_000);
  const redis = createRedisClient({ url: REDIS_URL });
  await waitForRedis(redis);
  const { metadata } = await loadModelBundle(DEFAULT_MODEL_DIR);
  const keyPrefix = unique('abuse');
  const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix });
  const users = Array.from({ length: 100 }, () => unique('user'));
  const window = [{ eventTimeMs: 1_764_000_000_000, stream: Streams.PLAY, partition: 0, offset: 1, itemId: 5, kind: EventKinds.PLAY, queryTokens: [] }];
  await store.writeStates(users.map((userId) => ({ userId, expectedVersion: 0, window, highWater: new Map(), embedding: new Float32Array(metadata.embeddingDim).fill(0.125), updatedMs: 1, appliedTotal: 1 })));
  // The server in its own process (`taste serve`), so its memory is measured apart from the clients'.
  const port = await freePort();
  const server = spawn(process.execPath, [CLI, 'serve', '--metrics-port', '0', '--host', '127.0.0.1', '--port', String(port), '--max-batch', '100', '--key-prefix', keyPrefix, '--redis-url', REDIS_URL], { stdio: ['ignore', 'ignore', 'pipe'] });
  let serverLog = '';
  server.stderr!.on('data', (chunk) => {
    serverLog = (serverLog + chunk).slice(-5000);
    if (process.env.TASTE_ABUSE_SERVER_LOG) appendFileSync(process.env.TASTE_ABUSE_SERVER_LOG, chunk);
  });
  t.teardown(() => {
    if (serverLog.includes('"level":"error"')) t.log('server log tail:', serverLog.slice(-2000));
    server.kill('SIGKILL');
    redis.disconnect();
  });
  const address = `127.0.0.1:${port}`;
  const probe = createEmbeddingClient(address);
  for (let ready = false; !ready; await sleep(100)) {
    ready = await getUserEmbedding(probe, { userId: users[0]! }, 1000).then(() => true, () => false);
  }
  const rssBefore = rssBytes(server.pid!);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(server.pid!))), 100);
  const codes = new Map<string, number>();
  const count = (kind: string, code: number) => codes.set(`${kind}:${grpc.status[code]}`, (codes.get(`${kind}:${grpc.status[code]}`) ?? 0) + 1);
  const unexpected: string[] = [];
  // Bounded memory: RSS may climb while V8 sizes its heap for the load, then must level off.
  let done = 0;
  let rssHalfway = 0;
  const expect = (kind: string, code: number, allowed: number[]) => {
    if (++done === Math.floor((CLIENTS * CALLS) / 2)) rssHalfway = rssBytes(server.pid!);
    count(kind, code);
    if (!allowed.includes(code)) unexpected.push(`${kind} → ${grpc.status[code]}`);
  };
  const details = new Map<string, number>();
  const codeOf = async (call: Promise<unknown>) =>
    call.then(
      () => grpc.status.OK,
      (error: grpc.ServiceError) => {
        if (error.code === grpc.status.INTERNAL || error.code === grpc.status.UNAVAILABLE) {
          details.set(error.details, (details.get(error.details) ?? 0) + 1);
        }
        return error.code;
      },
    );

  // Well-behaved clients and abusive ones share the server. An abuser may also lose its own
  // connection: 1 ms deadlines cancel streams as fast as it can send them, and Node's HTTP/2
  // rapid-reset protection then closes that session (INTERNAL "RST_STREAM with code 2" on the
  // abuser's side). Well-behaved clients must see only the right codes.
  const ABUSERS = 8;
  const reset = [grpc.status.INTERNAL, grpc.status.UNAVAILABLE];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, clientIndex) => {
      const client = createEmbeddingClient(address);
      const abuser = clientIndex < ABUSERS;
      for (let call = 0; call < CALLS; call++) {
        const user = users[(clientIndex + call) % users.length]!;
        if (abuser) {
          switch (call % 4) {
            case 0:
              expect('oversized', await codeOf(getUserEmbedding(client, { userId: OVERSIZED }, 5000)), [grpc.status.RESOURCE_EXHAUSTED, ...reset]);
              break;
            case 1:
              expect('malformed id', await codeOf(getUserEmbedding(client, { userId: `${user}{x}` }, 5000)), [grpc.status.INVALID_ARGUMENT, ...reset]);
              break;
            case 2:
              expect('batch over limit', await codeOf(batchGetUserEmbeddings(client, { userIds: Array(101).fill(user) }, 5000)), [grpc.status.INVALID_ARGUMENT, ...reset]);
              break;
            default:
              expect('abuser: 1 ms deadline', await codeOf(getUserEmbedding(client, { userId: user }, 1)), [grpc.status.OK, grpc.status.DEADLINE_EXCEEDED, ...reset]);
          }
          continue;
        }
        switch (call % 4) {
          case 1:
            expect('batch of 100', await codeOf(batchGetUserEmbeddings(client, { userIds: users }, 5000)), [grpc.status.OK]);
            break;
          default:
            expect('good', await codeOf(getUserEmbedding(client, { userId: user }, 5000)), [grpc.status.OK]);
        }
      }
      client.close();
    }),
  );
  clearInterval(sampler);
  const growthMb = (rssPeak - rssBefore) / 2 ** 20;
  t.log([...codes].sort().map(([key, n]) => `${key} ${n}`).join(', '), `| server RSS +${growthMb.toFixed(0)} MB (peak ${(rssPeak / 2 ** 20).toFixed(0)} MB)`);
  if (details.size > 0) t.log('INTERNAL/UNAVAILABLE details:', JSON.stringify([...details]));
  t.deepEqual(unexpected.slice(0, 10), []);
  const after = await getUserEmbedding(probe, { userId: users[0]! }, 5000);
  probe.close();
  t.is(server.exitCode, null, 'the server did not crash');
  t.is(after.embedding?.dimension, metadata.embeddingDim, 'the server still answers');
  const rssEnd = rssBytes(server.pid!);
  const secondHalfMb = (rssEnd - rssHalfway) / 2 ** 20;
  t.log(`server RSS: ${(rssBefore / 2 ** 20).toFixed(0)} MB idle, ${(rssHalfway / 2 ** 20).toFixed(0)} MB halfway, ${(rssEnd / 2 ** 20).toFixed(0)} MB at the end`);
  t.true(secondHalfMb < 64, `server RSS still grew ${secondHalfMb.toFixed(0)} MB in the second half of the run`);
  t.true(rssPeak < 512 * 2 ** 20, `server RSS peaked at ${(rssPeak / 2 ** 20).toFixed(0)} MB`);
});
