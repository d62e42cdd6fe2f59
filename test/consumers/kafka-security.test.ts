import anyTest, { type TestFn } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createKafka, createProducer, type KafkaConnectionOptions } from '../../consumers/kafka.js';
import { eventually, REDIS_URL, unique } from '../helpers/environment.js';
import { play, sendPlays, startTestJob, testLogger, uniqueTopics } from '../helpers/pipeline.js';
import { freePort } from '../reliability/harness.js';

// A broker of this file's own, started by deploy/local/services.sh with its SASL_SSL listener:
// TLS with a keytool certificate, SCRAM users made with kafka-configs. Nothing here is simulated.

interface Secured {
  brokers: string[];
  ca: string;
  caFile: string;
  user: string;
  password: string;
  servicesDir: string;
  brokerPid: number;
}
const test = anyTest as TestFn<Secured>;
const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(REPO, 'dist', 'cli', 'main.js');

test.before(async (t) => {
  const [kafkaPort, controllerPort, securePort] = [await freePort(), await freePort(), await freePort()];
  const servicesDir = join(REPO, '.taste', `services-kafka-secure-${securePort}`);
  const env = {
    ...process.env,
    TASTE_KAFKA_PORT: String(kafkaPort),
    TASTE_KAFKA_CONTROLLER_PORT: String(controllerPort),
    TASTE_KAFKA_SECURE_PORT: String(securePort),
    TASTE_REDIS_PORT: new URL(REDIS_URL).port,
    TASTE_SERVICES_DIR: servicesDir,
  };
  const services = join(REPO, 'deploy', 'local', 'services.sh');
  await run('bash', [services, 'start'], { env, timeout: 180_000 });
  const vars = Object.fromEntries(
    (await run('bash', [services, 'env'], { env })).stdout
      .split('\n')
      .filter((line) => line.startsWith('export '))
      .map((line) => line.slice('export '.length).split('=') as [string, string]),
  );
  const caFile = vars.TASTE_KAFKA_SECURE_CA!;
  t.context = {
    brokers: [vars.TASTE_KAFKA_SECURE_BROKERS!],
    ca: readFileSync(caFile, 'utf8'),
    caFile,
    user: vars.TASTE_KAFKA_SECURE_USER!,
    password: vars.TASTE_KAFKA_SECURE_PASSWORD!,
    servicesDir,
    brokerPid: Number(readFileSync(join(servicesDir, 'kafka', 'kafka.pid'), 'utf8').trim()),
  };
});

test.after.always(async (t) => {
  if (!t.context.servicesDir) return;
  try {
    process.kill(t.context.brokerPid, 'SIGKILL');
  } catch {
    // already gone
  }
  await rm(t.context.servicesDir, { recursive: true, force: true });
});

function secured(t: { context: Secured }, change: Partial<KafkaConnectionOptions> = {}): KafkaConnectionOptions {
  const { brokers, ca, user, password } = t.context;
  return { brokers, clientId: 'taste-test', ssl: true, tlsCa: ca, sasl: { mechanism: 'scram-sha-512', username: user, password }, connectionTimeoutMs: 3000, ...change };
}

/** 'connected' once a request has been answered, or why not. */
async function connects(options: KafkaConnectionOptions): Promise<string> {
  const admin = createKafka(options, testLogger).admin({ retry: { retries: 1 } });
  try {
    await admin.connect();
    await admin.listTopics();
    return 'connected';
  } catch (error) {
    return (error as Error).message;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

test('over TLS with SCRAM-SHA-512 the stream job consumes and writes embeddings', async (t) => {
  const topics = uniqueTopics();
  const job = await startTestJob({ topics, kafka: secured(t) });
  t.teardown(() => job.stop());
  const producer = createProducer(createKafka(secured(t), testLogger));
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const user = unique('user');
  await sendPlays(producer, topics.play, [play(user, 'taste:track:3', Date.now() - 2000), play(user, 'taste:track:4', Date.now() - 1000)]);
  await eventually(async () => ((await job.store.readEmbeddings([user]))[0]?.eventsInWindow === 2 ? true : undefined), 'two plays through the secured listener');
  t.pass();
});

test('SCRAM-SHA-256 works too; a wrong password, an untrusted certificate or plain text are refused with the reason', async (t) => {
  const { user, password } = t.context;
  const [sha256, wrongPassword, untrusted, plaintext, noSasl] = await Promise.all([
    connects(secured(t, { sasl: { mechanism: 'scram-sha-256', username: user, password } })),
    connects(secured(t, { sasl: { mechanism: 'scram-sha-512', username: user, password: `${password}-not` } })),
    connects(secured(t, { tlsCa: undefined })),
    connects(secured(t, { ssl: false, tlsCa: undefined })),
    connects(secured(t, { sasl: undefined })),
  ]);
  t.is(sha256, 'connected');
  t.regex(wrongPassword, /SASL SCRAM SHA512 authentication failed|Authentication failed/i);
  t.regex(untrusted, /self[- ]signed certificate|unable to verify|certificate/i);
  t.not(plaintext, 'connected');
  t.not(noSasl, 'connected');
});

test('the consume command connects with --kafka-tls-ca and SCRAM credentials from flags and env', async (t) => {
  const id = unique('cli');
  const child = spawn(
    process.execPath,
    [CLI, 'consume', '--metrics-port', '0', '--plays-topic', `${id}.plays`, '--searches-topic', `${id}.searches`, '--dead-letter-topic', `${id}.dlq`, '--group-id', id, '--key-prefix', id, '--intra-op-threads', '1',
      '--kafka-tls-ca', t.context.caFile, '--kafka-sasl-mechanism', 'scram-sha-512', '--kafka-sasl-username', t.context.user],
    { cwd: REPO, env: { ...process.env, TASTE_KAFKA_BROKERS: t.context.brokers.join(','), TASTE_REDIS_URL: REDIS_URL, TASTE_KAFKA_SASL_PASSWORD: t.context.password } },
  );
  let stderr = '';
  let signalled = false;
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (!signalled && stderr.includes('stream job started')) {
      signalled = true;
      child.kill('SIGTERM');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.regex(stderr, /stream job started/);
  t.is(code, 0, stderr.slice(-800));
});
