import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../../backfill/checkpoint.js';
import type { EventRecord } from '../../events/event-record.js';
import { unique } from '../helpers/environment.js';
import { type CliContext, cliEnv, history, killAfterSteps, type Run, stateDigest, taste, withCliContext, writeJsonl, writeParquet } from './helpers.js';

const test = anyTest as TestFn<CliContext>;
withCliContext(test);
const env = cliEnv;
const USERS = 120;
const PER_USER = 30;
const EVENTS = USERS * PER_USER;
/** A streaming run whose one step holds the whole input: every user's history in one apply, the state a grouped run must write. */
const ONE_STEP = ['--chunk-size', '1000000'];
/** Grouped steps of at most 100 events: three or so users each, never a user cut in two (30 events each). */
const GROUPED = ['--group-by-user', '--chunk-size', '100', '--batch-size', '2'];

function ok(t: ExecutionContext<CliContext>, run: Run): Run {
  t.is(run.code, 0, `exit ${run.code} ${run.signal ?? ''}: ${run.stderr}${run.stdout}`);
  return run;
}

function summaryCount(run: Run, pattern: RegExp): number {
  const match = pattern.exec(run.stdout);
  if (!match) throw new Error(`${pattern} not in: ${run.stdout}`);
  return Number(match[1]);
}

/**
 * One history over three files: older plays and searches of every user in a JSONL file, the newer
 * ones in a Parquet file, and a third file (JSONL) holding every fifth event of the whole time
 * range — so each user's events are spread over all files, interleaved with other users'.
 */
async function spreadHistory(t: ExecutionContext<CliContext>): Promise<string[]> {
  const events = history(unique('u'), USERS, PER_USER, Date.now() - 30 * 86_400_000);
  const third = events.filter((_, index) => index % 5 === 2);
  const rest = events.filter((_, index) => index % 5 !== 2);
  const half = Math.floor(rest.length / 2);
  const name = unique('bfgroup');
  const paths = [join(t.context.dir, `${name}-a.jsonl`), join(t.context.dir, `${name}-b.parquet`), join(t.context.dir, `${name}-c.jsonl`)];
  await writeJsonl(paths[0]!, rest.slice(0, half));
  await writeParquet(paths[1]!, rest.slice(half), 300);
  await writeJsonl(paths[2]!, third);
  return paths;
}

async function streamingDigest(t: ExecutionContext<CliContext>, input: string[], model: string[] = []): Promise<{ keys: number; digest: string }> {
  const prefix = unique('bfgroup-stream');
  const run = ok(t, await taste(['backfill', ...model, ...ONE_STEP, ...input, '--key-prefix', prefix], env));
  t.is(summaryCount(run, /events +(\d+) valid/), EVENTS);
  return stateDigest(t.context.redis, prefix);
}

// The stateful kind's step runs users padded to its batch's longest run of events, and its output
// changes in the last bits with that padding (unlike the windowed kind's, whose windows the backfill
// runs by length): both runs then take one user per batch, so that only the grouping differs.
const models = [
  { model: 'default', streaming: [], grouped: ['--batch-size', '2'] },
  { model: 'stateful', streaming: ['--batch-size', '1'], grouped: ['--batch-size', '1'] },
];
for (const { model, streaming, grouped: groupedBatch } of models) {
  test(`grouped by user (${model} model): one write per user, the same bytes as a streaming run that holds every user's history in one step`, async (t) => {
    const modelArgs = ['--model', `models/${model}`];
    const input = await spreadHistory(t);
    const expected = await streamingDigest(t, input, [...modelArgs, ...streaming]);
    t.is(expected.keys, 2 * USERS);
    const prefix = unique('bfgroup');
    const grouped = ok(t, await taste(['backfill', ...modelArgs, ...GROUPED, ...groupedBatch, ...input, '--key-prefix', prefix], env));
    t.is(summaryCount(grouped, /events +(\d+) valid/), EVENTS);
    t.is(summaryCount(grouped, /(\d+) state writes/), USERS, 'one state write per user');
    t.true(summaryCount(grouped, /state writes in (\d+) steps/) >= Math.floor(EVENTS / 100), 'in steps of at most 100 events');
    t.deepEqual(await stateDigest(t.context.redis, prefix), expected);
  });
}

test('a grouped run killed with SIGKILL after some steps resumes from its checkpoint to the same bytes', async (t) => {
  const input = await spreadHistory(t);
  const expected = await streamingDigest(t, input);
  const prefix = unique('bfgroup-kill');
  const checkpoint = join(t.context.dir, `${prefix}.ckpt`);
  const args = ['backfill', ...GROUPED, ...input, '--key-prefix', prefix, '--checkpoint', checkpoint];
  const killer = killAfterSteps(checkpoint, 3);
  const first = await taste(args, env, killer.onSpawn);
  t.is(first.signal, 'SIGKILL', `killed mid-way (exit ${first.code}): ${first.stdout}${first.stderr}`);
  const killedAt = JSON.parse(await readFile(checkpoint, 'utf8')) as Checkpoint;
  t.false(killedAt.done);
  t.true((killedAt.cursor?.next ?? 0) > 0 && (killedAt.cursor?.next ?? 0) < EVENTS, 'the checkpoint holds a position in the sorted rows');
  const resumed = ok(t, await taste(args, env));
  t.regex(resumed.stdout, /\(all runs of this checkpoint; \d+ in this run\)/);
  t.is(summaryCount(resumed, /events +(\d+) valid/), EVENTS, 'every event counted once over both runs');
  t.deepEqual(await stateDigest(t.context.redis, prefix), expected);

  const streaming = await taste(['backfill', '--chunk-size', '100', ...input, '--key-prefix', prefix, '--checkpoint', checkpoint], env);
  t.is(streaming.code, 1, 'a grouped checkpoint is not resumed by a streaming run');
  t.regex(streaming.stderr, /cannot be resumed: it was made with other options \(.*--group-by-user\)/);
});

test('the shards of a grouped run together write what the unsharded grouped run writes', async (t) => {
  const input = await spreadHistory(t);
  const expected = await streamingDigest(t, input);
  const prefix = unique('bfgroup-shards');
  const runs = await Promise.all([0, 1].map((index) => taste(['backfill', ...GROUPED, ...input, '--key-prefix', prefix, '--shard', `${index}/2`], env)));
  for (const run of runs) ok(t, run);
  t.is(runs.reduce((sum, run) => sum + summaryCount(run, /events +(\d+) valid/), 0), EVENTS, 'the shards split the events');
  t.deepEqual(await stateDigest(t.context.redis, prefix), expected);
});

test('a user with more events than --chunk-size is applied in pieces of --chunk-size, in order: what a streaming run of the same steps writes', async (t) => {
  // One user alone: its sorted order is the file's order, so streaming steps of 12 records are the grouped pieces of 12 events.
  const name = unique('bfgroup-big');
  const path = join(t.context.dir, `${name}.jsonl`);
  await writeJsonl(path, history(name, 1, 40, Date.now() - 86_400_000));
  const streamed = unique('bfgroup-big-stream');
  ok(t, await taste(['backfill', '--chunk-size', '12', path, '--key-prefix', streamed], env));
  const grouped = unique('bfgroup-big-grouped');
  const run = ok(t, await taste(['backfill', '--group-by-user', '--chunk-size', '12', path, '--key-prefix', grouped], env));
  t.is(summaryCount(run, /(\d+) state writes/), 4, '40 events in pieces of 12: four writes');
  t.deepEqual(await stateDigest(t.context.redis, grouped), await stateDigest(t.context.redis, streamed));
});

test('grouped: a bad record is reported, counted and skipped as in a streaming run; --fail-fast stops before anything is written', async (t) => {
  const name = unique('bfgroup-bad');
  const path = join(t.context.dir, `${name}.jsonl`);
  const events: EventRecord[] = history(name, 4, 5, Date.now() - 86_400_000);
  await writeJsonl(path, events, { 7: '{"type":"play","userId":"x","colour":"red"}' });
  const runs = await Promise.all(
    [[], ['--group-by-user']].map((mode) => taste(['backfill', ...mode, '--chunk-size', '10', path, '--key-prefix', unique('bfgroup-bad')], env)),
  );
  const [streaming, grouped] = runs.map((run) => ok(t, run));
  const badLine = (run: Run) => run.stderr.split('\n').filter((line) => line.includes('bad record'));
  t.deepEqual(badLine(grouped!), badLine(streaming!));
  t.regex(badLine(grouped!)[0] ?? '', new RegExp(`bad record .*${name}\\.jsonl:8: UNPARSABLE: .*colour`));
  for (const run of [streaming!, grouped!]) {
    t.is(summaryCount(run, /invalid +(\d+)/), 1);
    t.is(summaryCount(run, /records read +(\d+)/), events.length + 1);
    t.is(summaryCount(run, /events +(\d+) valid/), events.length);
  }

  const prefix = unique('bfgroup-failfast');
  const failFast = await taste(['backfill', '--group-by-user', '--fail-fast', path, '--key-prefix', prefix], env);
  t.is(failFast.code, 1, failFast.stderr);
  t.regex(failFast.stderr, /bad record .*:8: UNPARSABLE/);
  t.is((await stateDigest(t.context.redis, prefix)).keys, 0, 'the whole input is read before any write: nothing written');
});

test('--group-by-user with --kafka is a usage error', async (t) => {
  const run = await taste(['backfill', '--kafka', '--group-by-user'], env);
  t.is(run.code, 2, run.stderr);
  t.regex(run.stderr, /--group-by-user is for files/);
});

test('a --group-temp-dir that does not exist is refused before anything is written, naming the folder', async (t) => {
  const input = await spreadHistory(t);
  const prefix = unique('bfgroup-tmp');
  const missing = join(t.context.dir, 'no-such-folder');
  const run = await taste(['backfill', ...GROUPED, '--group-temp-dir', missing, ...input, '--key-prefix', prefix], env);
  t.is(run.code, 1, `exit ${run.code}: ${run.stderr}`);
  t.true(run.stderr.includes(`--group-temp-dir ${missing}: cannot make the grouping's folder there (ENOENT)`), run.stderr);
  t.true(run.stderr.includes('[TASTE_CONFIG_INVALID]'), run.stderr);
  t.is((await stateDigest(t.context.redis, prefix)).keys, 0);
});
