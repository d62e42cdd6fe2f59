import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../../backfill/checkpoint.js';
import { createProducer, ensureTopics } from '../../consumers/kafka.js';
import type { EventRecord } from '../../events/event-record.js';
import { encodePlayEvent, encodeSearchEvent } from '../../proto/event-codec.js';
import { unique } from '../helpers/environment.js';
import { testKafka, uniqueTopics } from '../helpers/pipeline.js';
import { type CliContext, cliEnv, history, killAfterSteps, type Run, stateDigest, taste, withCliContext, writeJsonl, writeParquet } from './helpers.js';

const test = anyTest as TestFn<CliContext>;
withCliContext(test);
const env = cliEnv;
const USERS = 160;
const PER_USER = 30;
const EVENTS = USERS * PER_USER;
// Small steps: a shard takes enough of them to be killed in the middle.
const STEP = ['--chunk-size', '100', '--batch-size', '64'];

function ok(t: ExecutionContext<CliContext>, run: Run): Run {
  t.is(run.code, 0, `exit ${run.code} ${run.signal ?? ''}: ${run.stderr}${run.stdout}`);
  return run;
}

/** The "events N valid" count of a run's summary (of all runs of its checkpoint, when resumed). */
function eventsOf(run: Run): number {
  const match = /events +(\d+) valid/.exec(run.stdout);
  if (!match) throw new Error(`no events count in: ${run.stdout}`);
  return Number(match[1]);
}

interface ShardedOutcome {
  /** The final run of each shard, by index. */
  runs: Run[];
  /** Where shard `killed` stood when it was killed. */
  killedAt?: Checkpoint | undefined;
}

/**
 * Runs shards 0..count-1 as separate processes side by side, each with its own checkpoint. Shard
 * `kill` (if any) is SIGKILLed after a few steps and started again with the same arguments.
 */
async function runShards(t: ExecutionContext<CliContext>, args: string[], count: number, kill?: number): Promise<ShardedOutcome> {
  const outcome: ShardedOutcome = { runs: [] };
  await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const checkpoint = join(t.context.dir, `${unique('shard')}-${index}-of-${count}.ckpt`);
      const shardArgs = [...args, '--shard', `${index}/${count}`, '--checkpoint', checkpoint];
      if (index === kill) {
        // Early, so that even a fast shard (the stateful model's) is still running when the poll sees it.
        const killer = killAfterSteps(checkpoint, 2);
        const first = await taste(shardArgs, env, killer.onSpawn);
        t.is(first.signal, 'SIGKILL', `shard ${index}/${count} was killed mid-way (exit ${first.code}): ${first.stdout}${first.stderr}`);
        outcome.killedAt = JSON.parse(await readFile(checkpoint, 'utf8')) as Checkpoint;
      }
      outcome.runs[index] = ok(t, await taste(shardArgs, env));
    }),
  );
  return outcome;
}

/** One unsharded run, then 1, 2 (one shard killed and resumed) and 4 shards, each into its own key prefix; their digests must all agree. */
async function checkShardsMatchUnsharded(t: ExecutionContext<CliContext>, input: string[]): Promise<void> {
  const base = unique('bfshard');
  const unsharded = ok(t, await taste(['backfill', ...STEP, ...input, '--key-prefix', `${base}-all`], env));
  t.is(eventsOf(unsharded), EVENTS);
  const expected = await stateDigest(t.context.redis, `${base}-all`);
  t.is(expected.keys, 2 * USERS, 'a state and a set of model versions per user');

  // N = 1 the way an Indexed Job of one pod runs it: --shards and the pod's index.
  ok(t, await taste(['backfill', ...STEP, ...input, '--key-prefix', `${base}-n1`, '--shards', '1'], { ...env, JOB_COMPLETION_INDEX: '0' }));
  t.deepEqual(await stateDigest(t.context.redis, `${base}-n1`), expected, 'N = 1');

  const two = await runShards(t, ['backfill', ...STEP, ...input, '--key-prefix', `${base}-n2`], 2, 1);
  t.true(two.killedAt !== undefined && !two.killedAt.done && two.killedAt.counts.steps >= 2, 'shard 1/2 was killed after some steps, before its end');
  t.regex(two.runs[1]!.stdout, /\(all runs of this checkpoint; \d+ in this run\)/, 'shard 1/2 resumed from its checkpoint');
  t.is(eventsOf(two.runs[0]!) + eventsOf(two.runs[1]!), EVENTS, `the two shards split the events, none read twice:\n${two.runs.map((run) => run.stdout + run.stderr).join('\n')}`);
  t.deepEqual(await stateDigest(t.context.redis, `${base}-n2`), expected, 'N = 2, one shard killed and resumed');

  const four = await runShards(t, ['backfill', ...STEP, ...input, '--key-prefix', `${base}-n4`], 4);
  t.is(four.runs.reduce((sum, run) => sum + eventsOf(run), 0), EVENTS, `the four shards split the events:\n${four.runs.map((run) => run.stdout + run.stderr).join('\n')}`);
  t.deepEqual(await stateDigest(t.context.redis, `${base}-n4`), expected, 'N = 4');
}

/** Events keyed by user, each with its event time as the record timestamp (as the stream's producers write them). */
async function produce(topics: { play: string; search: string }, events: readonly EventRecord[]): Promise<void> {
  const kafka = testKafka();
  await ensureTopics(kafka, [
    { topic: topics.play, partitions: 4 },
    { topic: topics.search, partitions: 4 },
  ]);
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    const message = (e: EventRecord) => ({
      key: e.event.userId,
      timestamp: String(e.event.eventTimeMs),
      value: e.kind === 'play' ? encodePlayEvent(e.event) : encodeSearchEvent(e.event),
    });
    await producer.sendBatch({
      acks: -1,
      topicMessages: [
        { topic: topics.play, messages: events.filter((e) => e.kind === 'play').map(message) },
        { topic: topics.search, messages: events.filter((e) => e.kind === 'search').map(message) },
      ],
    });
  } finally {
    await producer.disconnect();
  }
}

test('a Kafka range backfilled by 1, 2 or 4 shards (one killed and resumed) writes the same bytes as one unsharded run', async (t) => {
  const topics = uniqueTopics();
  // Record times within the broker's retention (7 days by default): with records 30 days old, the
  // retention check (every 5 minutes) deleted the whole log mid-test when it fell inside the run,
  // and the last shards found every range empty (seen in CI: all 4,800 offsets past the log start).
  await produce(topics, history(unique('u'), USERS, PER_USER, Date.now() - 2 * 86_400_000));
  await checkShardsMatchUnsharded(t, ['--kafka', '--plays-topic', topics.play, '--searches-topic', topics.search]);
});

test('files (a user across JSONL and Parquet files) backfilled by 1, 2 or 4 shards (one killed and resumed) write the same bytes as one unsharded run', async (t) => {
  // Each user's history is split across both files, so no shard could take whole files.
  const events = history(unique('u'), USERS, PER_USER, Date.now() - 30 * 86_400_000);
  const half = Math.floor(events.length / 2);
  const name = unique('bfshard');
  const jsonl = join(t.context.dir, `${name}-older.jsonl`);
  const parquet = join(t.context.dir, `${name}-newer.parquet`);
  await writeJsonl(jsonl, events.slice(0, half));
  await writeParquet(parquet, events.slice(half), 500);
  await checkShardsMatchUnsharded(t, [jsonl, parquet]);
});

test("a shard refuses another shard's checkpoint; bad shard options exit 2 (the cases: shard.test.ts)", async (t) => {
  const name = unique('bfshard');
  const path = join(t.context.dir, `${name}.jsonl`);
  await writeJsonl(path, history(name, 20, 5, Date.now() - 86_400_000));
  const checkpoint = join(t.context.dir, `${name}.ckpt`);
  const args = ['backfill', path, '--key-prefix', name, '--checkpoint', checkpoint];
  ok(t, await taste([...args, '--shard', '1/2'], env));
  const other = await taste([...args, '--shard', '0/2'], env);
  t.is(other.code, 1, other.stderr);
  t.regex(other.stderr, /cannot be resumed: it was made for shard 1\/2, not shard 0\/2 \(each shard keeps its own checkpoint file\)/);
  const unsharded = await taste(args, env);
  t.is(unsharded.code, 1, unsharded.stderr);
  t.regex(unsharded.stderr, /it was made for shard 1\/2, not an unsharded run/);

  const usage: [string[], RegExp][] = [
    [['--shard', '2/2'], /--shard 2\/2: the shard index must be below the count \(0-based: 0\.\.1\)/],
    [['--shards', '2'], /--shards 2 needs this process's shard index: give --shard I\/2, or run it as a Kubernetes Indexed Job \(JOB_COMPLETION_INDEX\)/],
  ];
  for (const [flags, message] of usage) {
    const run = await taste(['backfill', path, ...flags], env);
    t.is(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
    t.regex(run.stderr, message);
  }
});
