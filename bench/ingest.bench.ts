// Kafka → embeddings ingest: the real stream job (consumers/stream-job.ts) on a pre-produced topic
// of simulated traffic, beside (a) a kafkajs consumer that does nothing with the same messages and
// (b) the model-only ceiling (ORT alone on pre-built tensors, same threads) turned into events/s
// with the per-user coalescing the job actually got (events per user per step).
import { EventFeaturizer } from '../events/featurizer.js';
import { EventTypes } from '../events/event-record.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL } from './lib/env.js';
import { consumeAll } from './lib/kafka-ceiling.js';
import { ortUsersPerSecondIsolated } from './lib/ort.js';
import { jobIntraOpThreads, type JobOverrides, jobOverridesFromArgs, type PipelineRun, runPipeline } from './lib/pipeline.js';
import { Report } from './lib/report.js';
import { benchKafka, benchTopics, createTopics, deleteTopics } from './lib/services.js';
import { fmt, quantile, spread } from './lib/stats.js';
import { produceWorldEvents } from './lib/traffic.js';

const args = benchArgs({
  events: { type: 'string' },
  users: { type: 'string' },
  partitions: { type: 'string' },
  cold: { type: 'boolean' },
  'inference-workers': { type: 'string' },
  'intra-op-threads': { type: 'string' },
  'partitions-concurrently': { type: 'string' },
  'chunk-size': { type: 'string' },
  compare: { type: 'boolean' },
});
const report = new Report('ingest');
// Many users (Zipf-like activity), so that a step's users rarely repeat, as in production.
const N = numberArg(args, 'events', args.long ? 60_000 : 12_000);
const U = numberArg(args, 'users', args.long ? 1_000_000 : 100_000);
const P = numberArg(args, 'partitions', 4);
const cold = Boolean(args.values.cold);
const overrides = jobOverridesFromArgs(args);
const threads = jobIntraOpThreads(overrides);
// --compare (on with --long): each repeat also runs the job with candidate settings, interleaved.
const candidates: { key: string; label: string; overrides: JobOverrides }[] =
  args.values.compare || args.long
    ? [
        { key: 'intra1', label: '1 intra-op thread', overrides: { ...overrides, intraOpThreads: 1 } },
        { key: 'chunk2000', label: 'chunkSize 2000 (more coalescing per step)', overrides: { ...overrides, chunkSize: 2000 } },
      ].filter((c) => threads !== 1 || c.key !== 'intra1')
    : [];

const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const kafka = benchKafka();
const topics = benchTopics();
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
await waitForRedis(redis);
await createTopics(kafka, topics, P);
report.info(`job settings: ${JSON.stringify({ workers: overrides.inferenceWorkers ?? 1, intraOpThreads: threads, ...overrides })}; ${cold ? 'cold users (no state)' : `users seeded with a full ${metadata.maxSeqLen}-event history`}`);

try {
  const traffic = await produceWorldEvents(kafka, topics, { users: U, count: N });
  const touched = [...traffic.eventsByUser.keys()];
  const perUser = [...traffic.eventsByUser.values()];
  report.info(
    `produced ${traffic.sent} events (${traffic.plays} plays, ${traffic.searches} searches) of ${touched.length} of ${U} simulated users ` +
      `in ${(traffic.produceMs / 1000).toFixed(1)} s over ${P} partitions per topic; events per touched user p50 ${quantile(perUser, 0.5)} p99 ${quantile(perUser, 0.99)} max ${Math.max(...perUser)}`,
  );
  const featurizer = new EventFeaturizer({ vocabulary: bundle.vocabulary, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets });
  const typeOf = (topic: string) => (topic === topics.play ? EventTypes.PLAY : EventTypes.SEARCH);

  const noop: number[] = [];
  const decode: number[] = [];
  const runs: PipelineRun[] = [];
  const candidateRuns: Record<string, PipelineRun[]> = {};
  // The model-only ceiling is measured right after each run of the job (same threads, the batch
  // the run formed, T = the windows' length) in a fresh process, and each run is compared with its
  // own ceilings: on a shared machine, a ceiling measured minutes apart can be off by ×2, and one
  // measured inside this process shares its heap and garbage collector (seen: ×2.5 slower).
  const T = cold ? Math.min(metadata.maxSeqLen, Math.max(...perUser)) : metadata.maxSeqLen;
  const modelUsers: number[] = [];
  const modelEventsRuns: number[] = [];
  const batches: number[] = [];
  const cpuEfficiency: { pipeline: number; model: number }[] = [];
  for (let r = 0; r < args.repeats; r++) {
    for (const c of candidates) {
      const run = await runPipeline({ bundle, redis, topics, expected: N, overrides: c.overrides, ...(cold ? {} : { seedUserIds: touched }) });
      (candidateRuns[c.key] ??= []).push(run);
      report.info(`run ${r + 1}, ${c.label}: stream job ${fmt(run.eventsPerS)}/s (${run.eventsPerUserStep.toFixed(2)} events/user/step)`);
    }
    const n = await consumeAll(kafka, topics, N);
    noop.push(n.eventsPerS);
    const d = await consumeAll(kafka, topics, N, {
      work: ({ batch }) => {
        const now = Date.now();
        const type = typeOf(batch.topic);
        for (const message of batch.messages) {
          featurizer.featurize(type, { topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value }, now);
        }
      },
    });
    decode.push(d.eventsPerS);
    const run = await runPipeline({ bundle, redis, topics, expected: N, overrides, ...(cold ? {} : { seedUserIds: touched }) });
    runs.push(run);
    const batch = Math.max(1, Math.min(256, Math.round(run.usersPerStep)));
    const model = await ortUsersPerSecondIsolated({ modelDir: bundle.directory, batch, timeSteps: T, threads, ms: args.long ? 3000 : 1000 });
    const users = model.usersPerS;
    batches.push(batch);
    modelUsers.push(users);
    modelEventsRuns.push(users * run.eventsPerUserStep);
    // Events per CPU-second: the share of the job's CPU that the model alone would need.
    cpuEfficiency.push({ pipeline: 1e6 / run.cpuUsPerEvent, model: (1e6 / model.cpuUsPerUser) * run.eventsPerUserStep });
    report.info(
      `run ${r + 1}: kafkajs no-op ${fmt(n.eventsPerS)}/s (${n.ms.toFixed(0)} ms), +decode/validate ${fmt(d.eventsPerS)}/s, ` +
        `stream job ${fmt(run.eventsPerS)}/s (${(run.ms / 1000).toFixed(1)} s, ${run.steps.length} steps, ${run.usersPerStep.toFixed(0)} users/step, ` +
        `${run.eventsPerUserStep.toFixed(2)} events/user/step, applied ${run.applied}, dup ${run.duplicates}, dead ${run.deadLettered}, RSS ${run.rssBeforeMb.toFixed(0)}→${run.rssPeakMb.toFixed(0)} MB); ` +
        `model-only ${fmt(users)} users/s @b=${batch} = ${fmt(users * run.eventsPerUserStep)} events/s; ` +
        `CPU: job ${run.cpuUsPerEvent.toFixed(0)} µs/event, model alone ${(1e6 / cpuEfficiency[cpuEfficiency.length - 1]!.model).toFixed(0)} µs/event`,
    );
  }

  const usersPerStep = quantile(runs.map((run) => run.usersPerStep), 0.5);
  const eventsPerUser = quantile(runs.map((run) => run.eventsPerUserStep), 0.5);
  const batch = quantile(batches, 0.5);
  const modelUsersS = spread(modelUsers);
  const modelEvents = spread(modelEventsRuns);
  const ratioModel = spread(runs.map((run, i) => run.eventsPerS / modelEventsRuns[i]!));
  const ratioKafka = spread(runs.map((run, i) => run.eventsPerS / noop[i]!));
  const pipe = spread(runs.map((run) => run.eventsPerS));
  const noopS = spread(noop);
  const decodeS = spread(decode);
  const inferenceBound = modelEvents.median < noopS.median;
  report.info(
    `model-only ceiling: ${fmt(modelUsersS.median)} users/s at batch ${batch}, T=${T}, ${threads} intra-op threads × ${eventsPerUser.toFixed(2)} events/user/step = ${fmt(modelEvents.median)} events/s ` +
      `→ ${inferenceBound ? 'inference-bound (model ceiling below the Kafka ceiling): goal ≥ 0.8 × model ceiling' : 'not inference-bound: goal ≥ 0.5 × kafkajs no-op'}`,
  );
  const bar = (label: string, s: typeof pipe, ceiling: boolean) => ({ label, value: s.median, low: s.min, high: s.max, ceiling });
  report.plot({
    id: 'ingest',
    kind: 'bars',
    title: 'Stream job throughput against its ceilings, same topic, same run',
    caption: `${fmt(N)} events of ${fmt(U)} simulated users, ${P} partitions, ${threads} intra-op threads; median of ${args.repeats} runs, bars min–max`,
    yLabel: 'events per second',
    valueLog: true,
    bars: [
      bar('kafkajs no-op consumer', noopS, true),
      bar('+ decode, validate, featurize', decodeS, true),
      bar(`model alone (batch ${batch}, T=${T})`, modelEvents, true),
      bar('taste stream job (Kafka → model → Redis, committed)', pipe, false),
    ],
  });
  report.context('maxEventsPerS', pipe.median);
  report.context('settings', { events: N, users: U, partitions: P, cold, threads, overrides, batch, T, eventsPerUser, usersPerStep });
  report.context('runs', runs.map(({ steps, ...rest }) => ({ ...rest, stepUsers: steps.map((s) => s.users) })));

  report.figure({
    id: 'ingest.vs_model',
    label: 'stream job events/s vs model-only ceiling (events/s at the coalescing seen)',
    unit: 'events/s',
    value: pipe.median,
    spread: pipe,
    ceiling: modelEvents.median,
    ceilingSpread: modelEvents,
    ceilingLabel: `model-only (ORT ${fmt(modelUsersS.median)} users/s @b=${batch},T=${T} × ${eventsPerUser.toFixed(2)} ev/user)`,
    ratio: ratioModel.median,
    note: `ratio = median of per-run ratios (each run beside the ceiling measured right after it): ${ratioModel.runs.map((x) => x.toFixed(2)).join(', ')}`,
    ...(inferenceBound ? { goal: { kind: 'min-ratio', target: 0.8 } as const } : {}),
  });
  const cpuPipe = spread(cpuEfficiency.map((c) => c.pipeline));
  const cpuModel = spread(cpuEfficiency.map((c) => c.model));
  report.figure({
    id: 'ingest.cpu_vs_model',
    label: 'stream job events per CPU-second (whole process) vs the model alone per CPU-second at the same batch and coalescing: how much of the CPU goes to the model (noise-robust)',
    unit: 'events/CPU-s',
    value: cpuPipe.median,
    spread: cpuPipe,
    ceiling: cpuModel.median,
    ceilingSpread: cpuModel,
    ceilingLabel: 'model alone',
    ratio: spread(cpuEfficiency.map((c) => c.pipeline / c.model)).median,
  });
  report.figure({
    id: 'ingest.vs_kafka',
    label: 'stream job events/s vs kafkajs no-op consumer',
    unit: 'events/s',
    value: pipe.median,
    spread: pipe,
    ceiling: noopS.median,
    ceilingSpread: noopS,
    ceilingLabel: 'kafkajs no-op',
    ratio: ratioKafka.median,
    note: `per-run ratios ${ratioKafka.runs.map((x) => x.toFixed(3)).join(', ')}`,
    ...(inferenceBound ? {} : { goal: { kind: 'min-ratio', target: 0.5 } as const }),
  });
  report.figure({
    id: 'ingest.decode_vs_kafka',
    label: 'kafkajs + protobuf decode + validate + featurize vs kafkajs no-op',
    unit: 'events/s',
    value: decodeS.median,
    spread: decodeS,
    ceiling: noopS.median,
    ceilingSpread: noopS,
    ceilingLabel: 'kafkajs no-op',
  });
  for (const c of candidates) {
    const cs = spread(candidateRuns[c.key]!.map((run) => run.eventsPerS));
    report.figure({
      id: `ingest.candidate.${c.key}`,
      label: `stream job events/s with ${c.label} vs the default settings (same topic, interleaved runs)`,
      unit: 'events/s',
      value: cs.median,
      spread: cs,
      ceiling: pipe.median,
      ceilingSpread: pipe,
      ceilingLabel: 'default settings',
    });
  }
  const rss = spread(runs.map((run) => run.rssPeakMb));
  const rssBase = spread(runs.map((run) => run.rssBeforeMb));
  report.figure({
    id: 'ingest.rss_peak',
    label: 'process RSS peak while the stream job runs (bench process + job + inference worker)',
    unit: 'MB',
    value: rss.median,
    spread: rss,
    ceiling: rssBase.median,
    ceilingLabel: 'RSS before the job started',
    lowerIsBetter: true,
  });
} finally {
  await deleteTopics(kafka, topics);
  redis.disconnect();
}
report.finish(OUT_DIR);
