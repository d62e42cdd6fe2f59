// One pass per user (issue 15 parts 2 and 3): the same simulated JSONL file backfilled in the
// streaming mode (steps of 50 000 records in file order) and with --group-by-user (the file read
// whole into DuckDB, sorted by user, each user's history one step), every run a fresh process, one
// after the other. Each is set against its ceiling: a process that only reads, validates and
// featurizes the same file (JsonlSource), then runs the model alone (onnxruntime-node, pre-built
// tensors) on the inference calls that run made — the same users, the same window lengths — timed
// at 1 and at all-cores intra-op threads, the faster taken. Goal: grouped ≥ 0.8 × its ceiling.
// Run: npm run build && eval "$(bash deploy/local/services.sh env)" && node dist/bench/backfill-grouped.bench.js [--users N] [--days D]
//   default 10 000 users × 7 days (~600k events, about a minute).
import { availableParallelism } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelBundle } from '../model/model-bundle.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { type BackfillRun, type CeilingRun, runBackfillChild as child } from './lib/backfill-child.js';
import { dropKeys, simulateJsonl } from './lib/backfill-model.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, unique } from './lib/env.js';
import { Report } from './lib/report.js';

const args = benchArgs({ users: { type: 'string' }, days: { type: 'string' } });
const report = new Report('backfill-grouped');
const days = numberArg(args, 'days', 7);
const users = numberArg(args, 'users', 10_000);
const { metadata } = await loadModelBundle(MODEL_DIR);
const threads = [...new Set([1, Math.max(1, availableParallelism())])].join(',');
report.info(`model ${metadata.modelVersion} (${metadata.kind}); simulated ${users} users × ${days} days; batch 256, concurrency 2, steps of 50 000; every run a separate process, one after the other`);




const MB = 1 << 20;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const dir = await mkdtemp(join(tmpdir(), 'taste-bench-backfill-grouped-'));
const redis = createRedisClient({ url: REDIS_URL, commandTimeoutMs: 10_000 });
await waitForRedis(redis);
const prefixes: string[] = [];
try {
  const input = join(dir, 'simulated.jsonl');
  await simulateJsonl(input, users, days);
  const backfill = (calls: string, extra: string[] = []): Promise<BackfillRun> => {
    const prefix = unique('backfill-grouped');
    prefixes.push(prefix);
    return child<BackfillRun>(['backfill', '--input', input, '--prefix', prefix, '--calls-out', calls, ...extra]);
  };
  const streamingCalls = join(dir, 'streaming-calls.json');
  const groupedCalls = join(dir, 'grouped-calls.json');
  const streaming = await backfill(streamingCalls);
  const grouped = await backfill(groupedCalls, ['--group-by-user']);
  const streamingCeiling = await child<CeilingRun>(['ceiling', '--input', input, '--calls', streamingCalls, '--threads', threads]);
  const groupedCeiling = await child<CeilingRun>(['ceiling', '--input', input, '--calls', groupedCalls, '--threads', threads]);
  if (new Set([streaming.events, grouped.events, streamingCeiling.events, groupedCeiling.events]).size !== 1) {
    throw new Error(`the runs disagree on the events: ${[streaming, grouped, streamingCeiling, groupedCeiling].map((run) => run.events).join(', ')}`);
  }
  for (const [label, run] of [['streaming', streaming], ['grouped', grouped]] as const) {
    report.info(
      `${label}: ${run.events} events, ${run.users} users, ${run.writes} writes, ${run.inferredUsers} users inferred; ${s(run.runMs)} (${s(run.wallMs)} with start-up and file hashing)` +
        `${run.grouping ? `, of which reading into DuckDB ${s(run.grouping.readMs)}, sorting ${s(run.grouping.sortMs)}, the steps ${s(run.runMs - run.grouping.readMs - run.grouping.sortMs)}` : ''}; ` +
        `CPU ${s(run.cpuMs)}; peak RSS ${(run.maxRssBytes / MB).toFixed(0)} MB`,
    );
  }
  for (const [label, run] of [['streaming', streamingCeiling], ['grouped', groupedCeiling]] as const) {
    const byThreads = Object.entries(run.modelMsByThreads).map(([count, ms]) => `${s(ms)} at ${count} thread${count === '1' ? '' : 's'}`).join(', ');
    report.info(`ceiling for the ${label} run's calls: read + validate + featurize ${s(run.readMs)}, the model alone ${byThreads}`);
  }
  report.context('runs', { streaming, grouped, streamingCeiling, groupedCeiling, users, days });

  const eventsPerS = (run: BackfillRun) => run.events / (run.runMs / 1000);
  const ceilingPerS = (run: CeilingRun) => run.events / ((run.readMs + run.modelMs) / 1000);
  const ceilingLabel = 'read + validate + featurize, then the model alone on the same inference calls (the faster thread count)';
  report.figure({
    id: 'backfill-grouped.grouped_events_per_s_vs_read_featurize_model',
    label: '--group-by-user backfill events/s vs a process that only reads, featurizes and runs the model on the same calls',
    unit: 'events/s',
    value: eventsPerS(grouped),
    ceiling: ceilingPerS(groupedCeiling),
    ceilingLabel,
    goal: { kind: 'min-ratio', target: 0.8 },
  });
  report.figure({
    id: 'backfill-grouped.streaming_events_per_s_vs_read_featurize_model',
    label: 'streaming backfill (steps of 50 000 records) events/s vs a process that only reads, featurizes and runs the model on the same calls',
    unit: 'events/s',
    value: eventsPerS(streaming),
    ceiling: ceilingPerS(streamingCeiling),
    ceilingLabel,
    goal: { kind: 'min-ratio', target: 0.8 },
  });
  report.figure({
    id: 'backfill-grouped.grouped_events_per_s_vs_streaming',
    label: '--group-by-user backfill events/s vs the streaming backfill of the same file',
    unit: 'events/s',
    value: eventsPerS(grouped),
    ceiling: eventsPerS(streaming),
    ceilingLabel: 'the streaming run',
    note: `state writes ${grouped.writes} vs ${streaming.writes}; users inferred ${grouped.inferredUsers} vs ${streaming.inferredUsers}`,
  });
  report.figure({
    id: 'backfill-grouped.grouped_peak_rss',
    label: 'peak RSS of the --group-by-user process vs the streaming one',
    unit: 'MB',
    value: grouped.maxRssBytes / MB,
    ceiling: streaming.maxRssBytes / MB,
    ceilingLabel: 'the streaming process',
    lowerIsBetter: true,
    note: "informational: DuckDB holds the whole input (its memory limit, 1 GB by default, then it spills to disk); JS holds a step's events as in the streaming mode",
  });
} finally {
  for (const prefix of prefixes) await dropKeys(redis, prefix);
  redis.disconnect();
  await rm(dir, { recursive: true, force: true });
}
report.finish(OUT_DIR);
