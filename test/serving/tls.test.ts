import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import anyTest, { type TestFn } from 'ava';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { createEmbeddingClient, getUserEmbedding } from '../../serving/client.js';
import { startServingServer, type ServingServer } from '../../serving/server.js';
import { REDIS_URL, unique } from '../helpers/environment.js';

interface Context {
  dir: string;
  redis: RedisClient;
  store: FeatureStore;
  tls: ServingServer;
  mtls: ServingServer;
}

const test = anyTest as TestFn<Context>;

/** A throwaway CA with a server certificate for 127.0.0.1 and a client certificate, via openssl. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=taste-test-ca', '-days', '1');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, subject] of [['server', '/CN=localhost'], ['client', '/CN=ranking-service']] as const) {
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}

test.before(async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'taste-tls-'));
  makeCertificates(dir);
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'test-serving-tls' });
  await waitForRedis(redis);
  // Nothing is written under this prefix: lookups miss, which is enough to prove the round trip.
  const store = new FeatureStore({ redis, modelVersion: 'm1', queryTokens: 4, keyPrefix: unique('test-serving-tls') });
  const certs = { certPath: join(dir, 'server.pem'), keyPath: join(dir, 'server.key') };
  const tls = await startServingServer({ redis, service: { stores: [store] }, port: 0, tls: certs });
  const mtls = await startServingServer({
    redis,
    service: { stores: [store] },
    port: 0,
    tls: { ...certs, caPath: join(dir, 'ca.pem'), requireClientCert: true },
  });
  t.context = { dir, redis, store, tls, mtls };
});

test.after.always(async (t) => {
  await t.context.tls?.close();
  await t.context.mtls?.close();
  t.context.redis?.disconnect();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

const read = (dir: string, name: string) => readFileSync(join(dir, name));
// The certificate names localhost; clients dial 127.0.0.1 (what the server binds) and say which name to expect.
const sni: grpc.ChannelOptions = { 'grpc.ssl_target_name_override': 'localhost' };

async function codeOf(call: Promise<unknown>): Promise<grpc.status> {
  try {
    await call;
    return grpc.status.OK;
  } catch (error) {
    return (error as grpc.ServiceError).code;
  }
}

test('TLS: a client trusting the CA gets answers; a plaintext client does not', async (t) => {
  const { dir, tls } = t.context;
  const secure = createEmbeddingClient(tls.address, grpc.credentials.createSsl(read(dir, 'ca.pem')), sni);
  const plain = createEmbeddingClient(tls.address);
  try {
    t.is(await codeOf(getUserEmbedding(secure, { userId: 'alice' }, 3000)), grpc.status.NOT_FOUND);
    t.is(await codeOf(getUserEmbedding(plain, { userId: 'alice' }, 1000)), grpc.status.UNAVAILABLE);
  } finally {
    secure.close();
    plain.close();
  }
});

test('mutual TLS: a client without a certificate is refused, one signed by the CA is served', async (t) => {
  const { dir, mtls } = t.context;
  const ca = read(dir, 'ca.pem');
  const anonymous = createEmbeddingClient(mtls.address, grpc.credentials.createSsl(ca), sni);
  const known = createEmbeddingClient(mtls.address, grpc.credentials.createSsl(ca, read(dir, 'client.key'), read(dir, 'client.pem')), sni);
  try {
    t.is(await codeOf(getUserEmbedding(known, { userId: 'alice' }, 3000)), grpc.status.NOT_FOUND);
    t.is(await codeOf(getUserEmbedding(anonymous, { userId: 'alice' }, 1000)), grpc.status.UNAVAILABLE);
  } finally {
    anonymous.close();
    known.close();
  }
});
