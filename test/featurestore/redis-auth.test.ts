import test from 'ava';
import { spawn } from 'node:child_process';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { FeatureStore } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { freePort, portAnswers, sleep } from '../reliability/harness.js';

test('Redis AUTH: the password in the URL is used; without it the store refuses with a clear error', async (t) => {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', 's3cret pass', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  while (!(await portAnswers(port))) await sleep(50);

  const authed = createRedisClient({ url: `redis://:${encodeURIComponent('s3cret pass')}@127.0.0.1:${port}` });
  t.teardown(() => authed.disconnect());
  await waitForRedis(authed);
  const store = new FeatureStore({ redis: authed, modelVersion: 'm1', queryTokens: 8 });
  t.deepEqual(await store.readEmbeddings(['someone']), [undefined]);

  const anonymous = createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 });
  anonymous.on('error', () => undefined);
  t.teardown(() => anonymous.disconnect());
  // What every command does at start: the error names the cause and the flag to fix.
  const error = await t.throwsAsync(waitForRedis(anonymous, 1000), { instanceOf: TasteError });
  t.is(error?.code, ErrorCodes.STORE_UNAVAILABLE);
  t.regex(error!.message, /NOAUTH|Authentication required/i);
  t.regex(error!.message, /--redis-url/);
  const refused = new FeatureStore({ redis: anonymous, modelVersion: 'm1', queryTokens: 8 });
  await t.throwsAsync(refused.readEmbeddings(['someone']), { instanceOf: TasteError });
});
