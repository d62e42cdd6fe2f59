// One backfill shard, or the ceiling, in a fresh process, so that its CPU and peak RSS are its own.
// Prints one JSON line at the end, with `process.resourceUsage()` (all threads: the inference
// workers are threads of this process).
//   node dist/bench/backfill-shard-child.js backfill --input F --prefix P [--shard I/N] [--batch-size B] [--calls-out F] [--group-by-user]
//   node dist/bench/backfill-shard-child.js ceiling --input F --calls F [--threads T[,T2…]]   (the model timed at each; modelMs the fastest)
// The ceiling reads, validates and featurizes the same file as the backfill (JsonlSource, all
// users), then runs the model alone on the inference calls the unsharded backfill made.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { fileCoordinates, fileDigest } from '../backfill/file-identity.js';
import { runBackfillJob } from '../backfill/job.js';
import { JsonlSource } from '../backfill/jsonl-source.js';
import { createLogger } from '../common/logger.js';
import { EventFeaturizer } from '../events/featurizer.js';
import { defaultValidationLimits } from '../events/validation.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { type EmbedCall, recordEmbedCalls, replayEmbedCallsMs } from './lib/backfill-model.js';
import { MODEL_DIR, REDIS_URL } from './lib/env.js';
import { ortSession } from './lib/ort.js';
import { nowMs } from './lib/stats.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    input: { type: 'string' },
    prefix: { type: 'string' },
    shard: { type: 'string' },
    'batch-size': { type: 'string', default: '256' },
    'calls-out': { type: 'string' },
    'group-by-user': { type: 'boolean', default: false },
    calls: { type: 'string' },
    threads: { type: 'string', default: String(Math.max(1, availableParallelism())) },
  },
});
const mode = positionals[0];
const input = values.input;
if (!input || (mode !== 'backfill' && mode !== 'ceiling')) throw new Error('usage: backfill-shard-child.js backfill|ceiling --input FILE ...');

/** CPU (user + system) and peak RSS of this process so far, all threads. */
function usage(): { cpuMs: number; maxRssBytes: number } {
  const { userCPUTime, systemCPUTime, maxRSS } = process.resourceUsage();
  return { cpuMs: (userCPUTime + systemCPUTime) / 1000, maxRssBytes: maxRSS * 1024 };
}

if (mode === 'backfill') {
  if (!values.prefix) throw new Error('backfill needs --prefix');
  const [index, count] = (values.shard ?? '0/1').split('/').map(Number);
  const calls: EmbedCall[] = [];
  let grouping: { readMs: number; sortMs: number } | undefined;
  const started = nowMs();
  const summary = await runBackfillJob({
    input: { kind: 'files', paths: [input] },
    modelDir: MODEL_DIR,
    redis: { url: REDIS_URL },
    keyPrefix: values.prefix,
    batchSize: Number(values['batch-size']),
    shard: { index: index!, count: count! },
    ...(values['group-by-user'] ? { groupByUser: {} } : {}),
    // The grouped run's "input grouped by user" line: how long reading and sorting took.
    logger: createLogger('info', {}, (line) => {
      const entry = JSON.parse(line) as { level?: string; msg?: string; readMs?: number; sortMs?: number };
      if (entry.level === 'warn' || entry.level === 'error') process.stderr.write(`${line}\n`);
      if (entry.msg === 'input grouped by user') grouping = { readMs: entry.readMs ?? 0, sortMs: entry.sortMs ?? 0 };
    }),
    instrumentEmbedder: recordEmbedCalls(calls),
  });
  if (values['calls-out']) await writeFile(values['calls-out'], JSON.stringify(calls));
  const rows = calls.reduce((sum, call) => sum + call.rows, 0);
  process.stdout.write(
    JSON.stringify({ events: summary.runEvents, users: summary.users, writes: summary.writes, runMs: summary.runMs, wallMs: nowMs() - started, inferredUsers: rows, ...(grouping ? { grouping } : {}), ...usage() }) + '\n',
  );
} else {
  if (!values.calls) throw new Error('ceiling needs --calls (the unsharded backfill\'s --calls-out)');
  const calls = JSON.parse(await readFile(values.calls, 'utf8')) as EmbedCall[];
  const bundle = await loadModelBundle(MODEL_DIR);
  const { metadata, vocabulary } = bundle;
  const threadCounts = values.threads.split(',').map(Number);
  const featurizer = new EventFeaturizer({ vocabulary, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets, limits: defaultValidationLimits });
  const coordinates = fileCoordinates(await fileDigest(input, 'content'), { minEventTimeMs: defaultValidationLimits.minEventTimeMs });
  const { size } = await stat(input);
  const source = new JsonlSource({ path: input, label: input, gzip: false, bytes: size, coordinates, featurizer, filter: {}, nowMs: Date.now() });
  const readStart = nowMs();
  let events = 0;
  for await (const records of source.read(source.start)) for (const record of records) if (record.outcome.type === 'event') events++;
  const readMs = nowMs() - readStart;
  // The model alone at each thread count asked for; the ceiling is the fastest (ORT's spinning
  // threads can lose to one thread on small calls when the cores are shared).
  const modelMsByThreads: Record<string, number> = {};
  for (const threads of threadCounts) {
    const session = await ortSession(bundle, threads);
    modelMsByThreads[threads] = await replayEmbedCallsMs(session, metadata, calls);
    await session.release();
  }
  const modelMs = Math.min(...Object.values(modelMsByThreads));
  process.stdout.write(JSON.stringify({ events, readMs, modelMs, modelMsByThreads, ...usage() }) + '\n');
}
