// Sharded backfill (issue 15, "Bench"), on one simulated JSONL file, every run a fresh process,
// one after the other:
//  - CPU-seconds per event: the unsharded run vs shards 0/2 and 1/2 together (their CPU summed).
//    The machine has 2 cores, shared: two shards side by side would only take turns on them, so
//    a wall-clock speed-up means nothing here; the CPU per event says whether sharding wastes work
//    (each file shard reads the whole file and skips the other shard's lines);
//  - peak RSS of each process (getrusage's maxRSS, read by the process itself at its end);
//  - events/s of the unsharded run vs the ceiling: a process that only reads the same file,
//    validates and featurizes it (JsonlSource), then runs the model alone (onnxruntime-node, pre-built
//    tensors) on the inference calls the backfill made (as bench/backfill.bench.ts's model share).
//    Goal ≥ 0.8 (issue 15).
// Run: npm run build && eval "$(bash deploy/local/services.sh env)" && node dist/bench/backfill-shards.bench.js [--users N] [--days D] [--events N] [--long]
//   default 10 000 users × 7 days (~600k events, about a minute and a half); --long or --events 10000000 for the 10 M-event input.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelBundle } from '../model/model-bundle.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { type BackfillRun, type CeilingRun, runBackfillChild as child } from './lib/backfill-child.js';
import { dropKeys, simulateJsonl } from './lib/backfill-model.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, unique } from './lib/env.js';
import { Report } from './lib/report.js';
import { fmt } from './lib/stats.js';

/** What `taste simulate` writes per user and day at its defaults (measured: 121 807 events for 2 000 users × 7 days). */
const EVENTS_PER_USER_DAY = 8.7;
const LONG_EVENTS = 10_000_000;

const args = benchArgs({ users: { type: 'string' }, days: { type: 'string' }, events: { type: 'string' }, 'batch-size': { type: 'string' } });
const report = new Report('backfill-shards');
const days = numberArg(args, 'days', 7);
const targetEvents = numberArg(args, 'events', args.long ? LONG_EVENTS : 0);
const users = targetEvents > 0 ? Math.ceil(targetEvents / (EVENTS_PER_USER_DAY * days)) : numberArg(args, 'users', 10_000);
const batchSize = numberArg(args, 'batch-size', 256);
const { metadata } = await loadModelBundle(MODEL_DIR);
report.info(`model ${metadata.modelVersion} (${metadata.kind}); simulated ${users} users × ${days} days; batch ${batchSize}; every run a separate process, one after the other`);




const MB = 1 << 20;
const dir = await mkdtemp(join(tmpdir(), 'taste-bench-backfill-shards-'));
const redis = createRedisClient({ url: REDIS_URL, commandTimeoutMs: 10_000 });
await waitForRedis(redis);
const prefixes: string[] = [];
try {
  const input = join(dir, 'simulated.jsonl');
  await simulateJsonl(input, users, days);
  const calls = join(dir, 'calls.json');

  const backfill = (shard: string, extra: string[] = []): Promise<BackfillRun> => {
    const prefix = unique('backfill-shards');
    prefixes.push(prefix);
    return child<BackfillRun>(['backfill', '--input', input, '--prefix', prefix, '--shard', shard, '--batch-size', String(batchSize), ...extra]);
  };
  // What every process pays before its first event (Node, the model, ORT, Redis): a run over an empty file.
  const empty = join(dir, 'empty.jsonl');
  await writeFile(empty, '');
  const startup = await child<BackfillRun>(['backfill', '--input', empty, '--prefix', unique('backfill-shards-empty')]);
  const single = await backfill('0/1', ['--calls-out', calls]);
  const shards = [await backfill('0/2'), await backfill('1/2')];
  const ceiling = await child<CeilingRun>(['ceiling', '--input', input, '--calls', calls]);

  for (const [label, run] of [['start-up (empty file)', startup], ['unsharded', single], ['shard 0/2', shards[0]!], ['shard 1/2', shards[1]!]] as const) {
    report.info(
      `${label}: ${run.events} events, ${run.users} users, ${run.writes} writes, ${run.inferredUsers} users inferred; ${(run.runMs / 1000).toFixed(2)} s ` +
        `(${(run.wallMs / 1000).toFixed(2)} s with start-up and file hashing); CPU ${(run.cpuMs / 1000).toFixed(2)} s; peak RSS ${(run.maxRssBytes / MB).toFixed(0)} MB`,
    );
  }
  const ceilingS = (ceiling.readMs + ceiling.modelMs) / 1000;
  report.info(
    `ceiling: read + validate + featurize ${ceiling.events} events in ${(ceiling.readMs / 1000).toFixed(2)} s, the model alone on the backfill's calls ${(ceiling.modelMs / 1000).toFixed(2)} s; ` +
      `CPU ${(ceiling.cpuMs / 1000).toFixed(2)} s; peak RSS ${(ceiling.maxRssBytes / MB).toFixed(0)} MB`,
  );
  const shardEvents = shards[0]!.events + shards[1]!.events;
  if (shardEvents !== single.events || ceiling.events !== single.events) {
    throw new Error(`the runs disagree on the events: unsharded ${single.events}, shards ${shards[0]!.events} + ${shards[1]!.events}, ceiling ${ceiling.events}`);
  }
  report.context('runs', { startup, single, shards, ceiling, users, days, batchSize });

  const singleEventsPerS = single.events / (single.runMs / 1000);
  report.figure({
    id: 'backfill-shards.events_per_s_vs_read_featurize_model',
    label: `unsharded backfill events/s vs a process that only reads, featurizes and runs the model on the same calls`,
    unit: 'events/s',
    value: singleEventsPerS,
    ceiling: single.events / ceilingS,
    ceilingLabel: 'read + validate + featurize, then the model alone on the same inference calls',
    goal: { kind: 'min-ratio', target: 0.8 },
  });
  const cpuPerEvent = (run: { cpuMs: number }, events: number) => (run.cpuMs * 1000) / events; // µs
  const shardCpuMs = shards[0]!.cpuMs + shards[1]!.cpuMs;
  report.figure({
    id: 'backfill-shards.events_per_cpu_s_2_shards_vs_1',
    label: 'events per CPU-second, shards 0/2 + 1/2 (CPU summed) vs one unsharded process',
    unit: 'events/CPU-s',
    value: shardEvents / (shardCpuMs / 1000),
    ceiling: single.events / (single.cpuMs / 1000),
    ceilingLabel: 'the unsharded run on the same file',
    goal: { kind: 'min-ratio', target: 0.9 },
    note: `CPU per event ${fmt(cpuPerEvent({ cpuMs: shardCpuMs }, shardEvents))} µs vs ${fmt(cpuPerEvent(single, single.events))} µs (process start, model load and file hashing included: each shard pays them once)`,
  });
  report.figure({
    id: 'backfill-shards.events_per_cpu_s_after_startup_2_shards_vs_1',
    label: "events per CPU-second after start-up (an empty file's run subtracted from each process), shards 0/2 + 1/2 vs unsharded",
    unit: 'events/CPU-s',
    value: shardEvents / ((shardCpuMs - 2 * startup.cpuMs) / 1000),
    ceiling: single.events / ((single.cpuMs - startup.cpuMs) / 1000),
    ceilingLabel: 'the unsharded run on the same file',
    note: `start-up ${(startup.cpuMs / 1000).toFixed(2)} CPU-s per process; what is left is the work that grows with the input (each shard reads the whole file)`,
  });
  for (const [index, run] of shards.entries()) {
    report.figure({
      id: `backfill-shards.peak_rss_shard_${index}_of_2`,
      label: `peak RSS of shard ${index}/2 vs the unsharded process`,
      unit: 'MB',
      value: run.maxRssBytes / MB,
      ceiling: single.maxRssBytes / MB,
      ceilingLabel: 'the unsharded process',
      lowerIsBetter: true,
      note: 'informational: memory is bounded by the step (docs/backfill.md), so a shard is not expected to need much less',
    });
  }
} finally {
  for (const prefix of prefixes) await dropKeys(redis, prefix);
  redis.disconnect();
  await rm(dir, { recursive: true, force: true });
}
report.finish(OUT_DIR);
