// Backfill throughput beside the model-only ceiling, measured in the same run:
//  - MovieLens ml-latest-small ratings replayed as play events (movieId → `ml:movie:<id>`, unknown
//    to the default model → <unk>; 610 users, ~165 events each) and simulated listeners
//    (`taste simulate`), each backfilled from JSONL into Redis through the real CLI path
//    (runBackfillJob: parse, validate, featurize, read state, infer, compare-and-set write);
//  - ceiling 1: onnxruntime-node alone on pre-built tensors at the same batch size (256 users of
//    full windows, T = L), in users/s: the figure the backfill's events/s is held against (the
//    backfill runs the model once per user per step, not per event, so this ratio is large);
//  - ceiling 2: the very inference calls the backfill made (recorded: batch and window length of
//    each), replayed on pre-built tensors with onnxruntime-node alone: the time the model alone
//    needs for that work. events ÷ that time is what the backfill would do if everything else
//    (files, JSON, Redis, scheduling) were free; the ratio is the pipeline's efficiency.
// Run: npm run build && eval "$(bash deploy/local/services.sh env)" && node dist/bench/backfill.bench.js [--long]
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { runBackfillJob } from '../backfill/job.js';
import { createLogger } from '../common/logger.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { MODEL_OUTPUT } from '../model/contract.js';
import { buildSequenceBatch } from '../model/features.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { writeEventsJsonl } from '../simulator/jsonl.js';
import type { EventRecord } from '../events/event-record.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, REPO_ROOT, unique } from './lib/env.js';
import { feedsOf, ortSession } from './lib/ort.js';
import { Report } from './lib/report.js';
import { fmt, nowMs, timeLoop } from './lib/stats.js';
import { syntheticWindows } from './lib/windows.js';
import { type EmbedCall, dropKeys, recordEmbedCalls, replayEmbedCallsMs, simulateJsonl } from './lib/backfill-model.js';

const args = benchArgs({ users: { type: 'string' }, days: { type: 'string' }, 'batch-size': { type: 'string' }, 'ml-dir': { type: 'string' } });
const report = new Report('backfill');
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const batchSize = numberArg(args, 'batch-size', 256);
const simUsers = numberArg(args, 'users', args.long ? 10_000 : 2_000);
const simDays = numberArg(args, 'days', 7);
const mlDir = (args.values['ml-dir'] as string | undefined) ?? process.env.TASTE_BENCH_ML_DIR ?? join(REPO_ROOT, '..', 'shared', 'datasets', 'ml-latest-small');
// The pool's default: one worker, intra-op threads = cores.
const threads = Math.max(1, availableParallelism());
report.info(`model ${metadata.modelVersion}: D=${metadata.embeddingDim} L=${metadata.maxSeqLen}; cpu, 1 inference worker, ${threads} intra-op threads; batch size ${batchSize}`);

const dir = await mkdtemp(join(tmpdir(), 'taste-bench-backfill-'));
const redis = createRedisClient({ url: REDIS_URL, commandTimeoutMs: 10_000 });
await waitForRedis(redis);
const prefixes: string[] = [];

const session = await ortSession(bundle, threads);

/** Ceiling 1: model alone, pre-built tensors, `batchSize` full windows per run → users/s. */
async function modelOnlyUsersPerS(): Promise<number> {
  const feeds = feedsOf(buildSequenceBatch(syntheticWindows(batchSize, metadata.maxSeqLen, metadata, 11), metadata.queryTokens));
  const { runs, ms } = await timeLoop(() => session.run(feeds, [MODEL_OUTPUT]), { minMs: args.long ? 6000 : 3000, minRuns: 3, warmup: 1 });
  return (runs * batchSize) / (ms / 1000);
}

async function movieLensJsonl(path: string): Promise<number | undefined> {
  const ratings = join(mlDir, 'ratings.csv');
  if (!existsSync(ratings)) return undefined;
  const lines = createInterface({ input: createReadStream(ratings, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  async function* events(): AsyncGenerator<EventRecord> {
    let header = true;
    for await (const line of lines) {
      if (header) {
        header = false;
        continue;
      }
      const [userId, movieId, rating, timestamp] = line.split(',');
      const stars = Number(rating);
      // A rating as a play: liked → completed, disliked → skipped, in between → stopped half-way.
      const [msPlayed, endReason] = stars >= 3.5 ? [180_000, 'END_REASON_COMPLETED'] : stars < 2.5 ? [15_000, 'END_REASON_SKIPPED_FORWARD'] : [90_000, 'END_REASON_USER_STOPPED'];
      yield {
        kind: 'play',
        event: {
          userId: `ml-${userId}`,
          itemUri: `ml:movie:${movieId}`,
          itemKind: 'ITEM_KIND_TRACK',
          eventTimeMs: Number(timestamp) * 1000,
          msPlayed: msPlayed as number,
          itemDurationMs: 180_000,
          context: 'PLAY_CONTEXT_LIBRARY',
          endReason: endReason as 'END_REASON_COMPLETED',
        },
      };
    }
  }
  return writeEventsJsonl(events(), path);
}

try {
  const datasets: { id: string; label: string; path: string; minEventTimeMs?: number }[] = [];
  const mlPath = join(dir, 'ml-latest-small.jsonl');
  const mlEvents = await movieLensJsonl(mlPath);
  if (mlEvents === undefined) report.info(`MovieLens not found under ${mlDir} (--ml-dir or TASTE_BENCH_ML_DIR): skipped`);
  else datasets.push({ id: 'movielens', label: `MovieLens ml-latest-small, ${mlEvents} ratings as plays`, path: mlPath, minEventTimeMs: Date.UTC(1990, 0, 1) });
  const simPath = join(dir, 'simulated.jsonl');
  await simulateJsonl(simPath, simUsers, simDays);
  datasets.push({ id: 'simulated', label: `simulated, ${simUsers} users × ${simDays} days`, path: simPath });

  const ceiling = await modelOnlyUsersPerS();
  report.info(`model-only ceiling: ${fmt(ceiling)} users/s (onnxruntime-node alone, pre-built tensors, ${batchSize} users × ${metadata.maxSeqLen} events per run)`);
  report.context('modelOnlyUsersPerS', ceiling);

  for (const dataset of datasets) {
    const prefix = unique(`backfill-${dataset.id}`);
    prefixes.push(prefix);
    const calls: EmbedCall[] = [];
    const started = nowMs();
    const summary = await runBackfillJob({
      input: { kind: 'files', paths: [dataset.path] },
      modelDir: MODEL_DIR,
      redis: { url: REDIS_URL },
      keyPrefix: prefix,
      batchSize,
      logger: createLogger('warn'),
      instrumentEmbedder: recordEmbedCalls(calls),
      ...(dataset.minEventTimeMs === undefined ? {} : { minEventTimeMs: dataset.minEventTimeMs }),
    });
    const wallS = (nowMs() - started) / 1000; // includes model load and file hashing
    const runS = summary.runMs / 1000;
    const eventsPerS = summary.runEvents / runS;
    const rows = calls.reduce((sum, call) => sum + call.rows, 0);
    const modelMs = await replayEmbedCallsMs(session, metadata, calls);
    const modelOnlyEventsPerS = summary.runEvents / (modelMs / 1000);
    report.info(
      `${dataset.label}: ${summary.runEvents} events, ${summary.users} users, ${summary.writes} state writes in ${summary.steps} steps; ` +
        `${runS.toFixed(2)} s (${wallS.toFixed(2)} s with start-up) = ${fmt(eventsPerS)} events/s; ` +
        `${rows} users inferred in ${calls.length} calls = ${fmt(rows / runS)} users/s; the model alone needs ${(modelMs / 1000).toFixed(2)} s for them`,
    );
    report.context(dataset.id, { summary, rows, calls: calls.length, modelMs, wallS });
    report.figure({
      id: `backfill.${dataset.id}.events_per_s_vs_model_users_per_s`,
      label: `${dataset.label}: backfill events/s vs model-only users/s at batch ${batchSize}`,
      unit: 'events/s',
      value: eventsPerS,
      ceiling,
      ceilingLabel: `model-only users/s (batch ${batchSize}, T=${metadata.maxSeqLen})`,
      goal: { kind: 'min-ratio', target: 0.9 },
    });
    report.figure({
      id: `backfill.${dataset.id}.events_per_s_vs_same_inference`,
      label: `${dataset.label}: backfill events/s vs the model alone doing the same inference calls`,
      unit: 'events/s',
      value: eventsPerS,
      ceiling: modelOnlyEventsPerS,
      ceilingLabel: 'events/s with only the model running (same calls, pre-built tensors)',
      note: 'the share of the run that is inference; informational (on 2 cores, parsing and Redis compete with the model threads)',
    });
  }
} finally {
  for (const prefix of prefixes) await dropKeys(redis, prefix);
  redis.disconnect();
  await session.release();
  await rm(dir, { recursive: true, force: true });
}
report.finish(OUT_DIR);
