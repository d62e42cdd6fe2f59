import anyTest, { type TestFn } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../../backfill/checkpoint.js';
import { unique } from '../helpers/environment.js';
import { type CliContext, cliEnv, history, killAfterSteps, simPlay, stateDigest, taste, withCliContext, writeJsonl } from './helpers.js';

const test = anyTest as TestFn<CliContext>;
withCliContext(test);
const env = cliEnv;

test('backfill --help shows usage and every option; bad values exit 2 naming the flag', async (t) => {
  const help = await taste(['backfill', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Usage: taste backfill \[options\] <file\|directory\|glob>/);
  for (const flag of ['--kafka', '--since', '--until', '--shard', '--shards', '--user', '--users-file', '--dry-run', '--concurrency', '--batch-size', '--checkpoint', '--fail-fast', '--model', '--redis-url', '--brokers']) {
    t.true(help.stdout.includes(flag), flag);
  }
  const top = await taste(['--help']);
  t.regex(top.stdout, /\bbackfill\b/);
  const badTime = await taste(['backfill', '--since', 'yesterday', 'x.jsonl']);
  t.is(badTime.code, 2);
  t.regex(badTime.stderr, /--since must be an ISO 8601 time/);
  const nothing = await taste(['backfill']);
  t.is(nothing.code, 2);
  t.regex(nothing.stderr, /give the files/);
  const badUser = await taste(['backfill', '--user', 'a b', 'x.jsonl']);
  t.is(badUser.code, 2);
  t.regex(badUser.stderr, /not a valid user id/);
});

test('a --users-file of a million users (a cohort) is read: only its users are backfilled', async (t) => {
  const prefix = unique('bfusers');
  const path = join(t.context.dir, `${prefix}.jsonl`);
  const now = Date.now();
  await writeJsonl(path, [simPlay(`${prefix}-in`, 'taste:track:2', now - 2000), simPlay(`${prefix}-out`, 'taste:track:3', now - 1000)]);
  const usersFile = join(t.context.dir, `${prefix}.users`);
  const cohort = Array.from({ length: 1_000_000 }, (_, i) => `${prefix}-c${i}`);
  await writeFile(usersFile, `# the cohort\n${cohort.join('\n')}\n${prefix}-in\n`);
  const run = await taste(['backfill', '--users-file', usersFile, '--key-prefix', prefix, path], env);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /applied 1,/);
  t.regex(run.stdout, /filtered +1\b/);
});

test('--fail-fast stops at the first bad record with exit 1, naming file and line', async (t) => {
  const prefix = unique('bfcli');
  const path = join(t.context.dir, `${prefix}.jsonl`);
  await writeJsonl(path, [simPlay(`${prefix}-a`, 'taste:track:2', Date.now() - 1000)], { 1: '{"type":"pause"}' });
  const strict = await taste(['backfill', '--fail-fast', '--key-prefix', prefix, path], env);
  t.is(strict.code, 1, strict.stderr);
  t.regex(strict.stderr, new RegExp(`bad record .*${prefix}\\.jsonl:2: UNPARSABLE: "type" must be "play" or "search"`));
  t.regex(strict.stdout, /stopped at a bad record/);
  const lenient = await taste(['backfill', '--key-prefix', prefix, path], env);
  t.is(lenient.code, 0, lenient.stderr);
  t.regex(lenient.stdout, /invalid {8}1 \(skipped\)/);
  t.regex(lenient.stdout, /applied 1,/);
});

test('killed with SIGKILL and restarted with its checkpoint, the backfill ends byte-identical to an uninterrupted run', async (t) => {
  const base = unique('bfcli');
  const path = join(t.context.dir, `${base}.jsonl`);
  await writeJsonl(path, history(base, 400, 60, Date.now() - 40 * 86_400_000));
  const common = ['backfill', '--chunk-size', '300', '--batch-size', '64', path];

  const whole = unique('bfcli');
  const uninterrupted = await taste([...common, '--key-prefix', whole], env);
  t.is(uninterrupted.code, 0, uninterrupted.stderr);

  const resumed = unique('bfcli');
  const checkpoint = join(t.context.dir, `${resumed}.ckpt`);
  const args = [...common, '--key-prefix', resumed, '--checkpoint', checkpoint, '--concurrency', '3'];
  const killer = killAfterSteps(checkpoint, 4);
  const first = await taste(args, env, killer.onSpawn);
  t.is(first.signal, 'SIGKILL', `the first run was killed mid-way (exit ${first.code}): ${first.stdout}`);
  t.truthy(killer.killedAt());
  const after = JSON.parse(await readFile(checkpoint, 'utf8')) as Checkpoint;
  t.false(after.done);
  t.true(after.counts.steps < 80, `killed after step ${after.counts.steps} of 80`);
  t.true(after.counts.records > 0 && after.counts.records < 24_000, `records in the checkpoint at the kill: ${after.counts.records}`);

  const second = await taste(args, env);
  t.is(second.code, 0, second.stderr);
  // The second run reads exactly what the checkpoint had not recorded as done, and no more.
  t.regex(second.stdout, new RegExp(`records read {3}24000 \\(all runs of this checkpoint; ${24_000 - after.counts.records} in this run\\)`));
  const done = JSON.parse(await readFile(checkpoint, 'utf8')) as Checkpoint;
  t.true(done.done);

  const [a, b] = await Promise.all([stateDigest(t.context.redis, whole), stateDigest(t.context.redis, resumed)]);
  t.is(a.keys, 2 * 400, '400 users: a state and a set of model versions each');
  t.deepEqual(b, a);

  const third = await taste(args, env);
  t.is(third.code, 0);
  t.regex(third.stdout, /already complete/);
  const other = await taste(['backfill', '--chunk-size', '301', path, '--key-prefix', resumed, '--checkpoint', checkpoint], env);
  t.is(other.code, 1);
  t.regex(other.stderr, /cannot be resumed: it was made with other options/);
});
