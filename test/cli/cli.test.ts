import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../../common/poll.js';
import { KAFKA_BROKERS, REDIS_URL, unique } from '../helpers/environment.js';
import { freePort } from '../reliability/harness.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function taste(args: string[], env: NodeJS.ProcessEnv = {}, onStderr?: (text: string, kill: (signal: NodeJS.Signals) => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      onStderr?.(stderr, (signal) => child.kill(signal));
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('every command has --help', async (t) => {
  const top = await taste(['--help']);
  t.is(top.code, 0);
  for (const command of ['demo', 'consume', 'serve', 'produce', 'simulate', 'backfill', 'evaluate', 'erase', 'rollout']) {
    t.regex(top.stdout, new RegExp(`\\b${command}\\b`));
    const help = await taste([command, '--help']);
    t.is(help.code, 0, `${command} --help`);
    t.regex(help.stdout, /Usage: taste/, command);
  }
});

test('a bad flag or value exits 2 and names it', async (t) => {
  const unknown = await taste(['consume', '--no-such-flag']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /--no-such-flag/);
  const badValue = await taste(['consume', '--inference-workers', 'many']);
  t.is(badValue.code, 2);
  t.regex(badValue.stderr, /--inference-workers must be an integer/);
  const badEnv = await taste(['consume'], { TASTE_EXECUTION_PROVIDER: 'tpu' });
  t.is(badEnv.code, 2);
  t.regex(badEnv.stderr, /TASTE_EXECUTION_PROVIDER must be one of cpu, webgpu, cuda/);
  const command = await taste(['frobnicate']);
  t.is(command.code, 2);
  const simulate = await taste(['simulate', '--userz', '5']);
  t.is(simulate.code, 2);
  t.regex(simulate.stderr, /^taste simulate: Unknown option '--userz'.*\(see taste simulate --help\)$/m);
});

test('a failure of Kafka or Redis ends the command with its code, and says whether retrying helps', async (t) => {
  // Port 1 answers nothing: kafkajs and ioredis both give up, and the CLI must print the project's
  // code for each (translated at their edges), never a bare library error.
  const kafka = await taste(['produce', '--brokers', '127.0.0.1:1']);
  t.is(kafka.code, 1);
  t.regex(kafka.stderr, /^taste produce: could not create the topics .*ECONNREFUSED.*\[TASTE_KAFKA[\],]/m);
  const dir = mkdtempSync(join(tmpdir(), 'taste-cli-'));
  const file = join(dir, 'events.jsonl');
  writeFileSync(file, '{"type":"play","userId":"user-1","itemUri":"spotify:track:1","eventTimeMs":1700000000000}\n');
  const redis = await taste(['backfill', '--redis-url', 'redis://127.0.0.1:1', '--key-prefix', unique('cli-err'), file]);
  t.is(redis.code, 1);
  t.regex(redis.stderr, /^taste backfill: Redis not reachable.*check --redis-url.*\[TASTE_STORE_UNAVAILABLE, retrying may help\]$/m);
  rmSync(dir, { recursive: true, force: true });
});

test('evaluate without an evaluation set, or with a bad one, says what it needs', async (t) => {
  const missing = await taste(['evaluate']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--set is required/);
  const wrong = await taste(['evaluate', '--set', '/nonexistent/set']);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /cannot read \/nonexistent\/set\/offline\.json: is this a directory written by python -m taste_training\.pipeline_eval\?.*TASTE_CONFIG_INVALID/);
  const tolerance = await taste(['evaluate', '--set', '/tmp', '--embedding-tolerance', 'loose']);
  t.is(tolerance.code, 2);
  t.regex(tolerance.stderr, /--embedding-tolerance must be a number >= 0, got "loose"/);
});

test('consume refuses a --min-event-time that is not a time', async (t) => {
  const run = await taste(['consume', '--min-event-time', 'last tuesday']);
  t.is(run.code, 2);
  t.regex(run.stderr, /--min-event-time must be an ISO 8601 time/);
});

test('a missing model is a clear error, not a crash', async (t) => {
  const run = await taste(['consume', '--model', '/nonexistent/model']);
  t.is(run.code, 1);
  t.regex(run.stderr, /cannot read model file .*model\.onnx.*TASTE_MODEL_LOAD/);
});

test('consume stops cleanly on SIGTERM', async (t) => {
  const id = unique('cli');
  let signalled = 0;
  const run = await taste(
    ['consume', '--metrics-port', '0', '--plays-topic', `${id}.plays`, '--searches-topic', `${id}.searches`, '--dead-letter-topic', `${id}.dlq`, '--erasures-topic', `${id}.erasures`, '--group-id', id, '--key-prefix', id, '--intra-op-threads', '1'],
    { TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_REDIS_URL: REDIS_URL },
    (stderr, kill) => {
      if (!signalled && stderr.includes('stream job started')) {
        signalled = Date.now();
        kill('SIGTERM');
      }
    },
  );
  t.true(signalled > 0, `the job started: ${run.stderr.slice(-500)}`);
  t.is(run.code, 0, run.stderr.slice(-500));
  t.regex(run.stderr, /"msg":"stopped"/);
  t.true(Date.now() - signalled < 25_000, 'within the grace period');
});

test('consume wires its own readiness: /readyz answers 200 once the member has joined, and /metrics shows its inference workers', async (t) => {
  const id = unique('cli');
  const metricsPort = await freePort();
  let url: string | undefined;
  let readyStatus: number | undefined;
  let metricsText = '';
  const run = await taste(
    ['consume', '--metrics-port', String(metricsPort), '--plays-topic', `${id}.plays`, '--searches-topic', `${id}.searches`, '--dead-letter-topic', `${id}.dlq`, '--erasures-topic', `${id}.erasures`, '--group-id', id, '--key-prefix', id, '--intra-op-threads', '1'],
    { TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_REDIS_URL: REDIS_URL },
    (stderr, kill) => {
      if (stderr.includes('"msg":"metrics"') && !url) {
        url = `http://127.0.0.1:${metricsPort}`;
        void (async () => {
          const ready = async () => ((readyStatus = (await fetch(`${url}/readyz`)).status) === 200 ? true : undefined);
          // However the wait ends, readyStatus keeps the last answer, which the assertions below show.
          await pollUntil(ready, { what: '/readyz to answer 200', timeoutMs: 30_000, intervalMs: 100 }).catch(() => undefined);
          metricsText = await (await fetch(`${url}/metrics`)).text();
          kill('SIGTERM');
        })();
      }
    },
  );
  t.truthy(url, `the metrics server started: ${run.stderr.slice(-500)}`);
  t.is(readyStatus, 200);
  t.regex(metricsText, /^taste_inference_workers\{model_version="[^"]+"\} 1$/m);
  t.is(run.code, 0, run.stderr.slice(-500));
});
