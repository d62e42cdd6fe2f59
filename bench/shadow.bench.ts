// The cost of a shadow model (docs/rollout.md): the real stream job on the same pre-produced
// traffic, runs interleaved, with models/default alone and with models/default plus a shadow of
// the same size (the same model under another version). A shadow adds its inference and its share
// of the atomic write per user, not a second Kafka read: every run counts the records and bytes
// Kafka hands the job, and the CPU per event the shadow adds is set beside the CPU per event of
// the model alone (ORT in a fresh process, at the batch and coalescing the run had).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Consumer, ConsumerRunConfig, EachBatchPayload } from 'kafkajs';
import type { StreamJobOptions } from '../consumers/stream-job.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { copyModelAsVersion } from '../test/helpers/onnx.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL } from './lib/env.js';
import { ortUsersPerSecondIsolated } from './lib/ort.js';
import { JOB_OVERRIDE_OPTIONS, jobIntraOpThreads, jobOverridesFromArgs, type PipelineRun, runPipeline } from './lib/pipeline.js';
import { type Figure, Report } from './lib/report.js';
import { benchKafka, benchTopics, createTopics, deleteTopics } from './lib/services.js';
import { fmt, spread } from './lib/stats.js';
import { produceWorldEvents } from './lib/traffic.js';

const args = benchArgs({ events: { type: 'string' }, users: { type: 'string' }, partitions: { type: 'string' }, ...JOB_OVERRIDE_OPTIONS });
const report = new Report('shadow');
const N = numberArg(args, 'events', args.long ? 40_000 : 8_000);
const U = numberArg(args, 'users', args.long ? 1_000_000 : 100_000);
const P = numberArg(args, 'partitions', 4);
const overrides = jobOverridesFromArgs(args);
const GOAL_RATIO = 0.45;

/** What one run of the job saw: the job's figures and the records and bytes Kafka handed it. */
interface ShadowRun {
  run: PipelineRun;
  kafkaRecords: number;
  kafkaBytes: number;
}

/**
 * A kafkajs consumer that counts every record (and its key and value bytes) handed to the job's
 * eachBatch: the job's reads of Kafka, however many models it runs.
 */
function countingConsumer(counts: { records: number; bytes: number }): NonNullable<StreamJobOptions['createConsumer']> {
  return (kafka, config) => {
    const consumer: Consumer = kafka.consumer(config);
    const run = consumer.run.bind(consumer);
    consumer.run = (runConfig?: ConsumerRunConfig) => {
      const eachBatch = runConfig?.eachBatch;
      if (!eachBatch) return run(runConfig);
      return run({
        ...runConfig,
        eachBatch: (payload: EachBatchPayload) => {
          for (const message of payload.batch.messages) {
            counts.records++;
            counts.bytes += (message.key?.length ?? 0) + (message.value?.length ?? 0);
          }
          return eachBatch(payload);
        },
      });
    };
    return consumer;
  };
}

const primary = await loadModelBundle(MODEL_DIR);
const scratch = await mkdtemp(join(tmpdir(), 'taste-bench-shadow-'));
const kafka = benchKafka();
const topics = benchTopics();
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
try {
  const shadowVersion = `${primary.metadata.modelVersion}-bench-shadow`;
  const shadow = await loadModelBundle(await copyModelAsVersion(primary.directory, join(scratch, 'shadow'), shadowVersion));
  await waitForRedis(redis);
  await createTopics(kafka, topics, P);
  const threads = jobIntraOpThreads(overrides);
  report.info(
    `primary ${primary.metadata.modelVersion} alone vs + shadow ${shadowVersion} (the same model: same size, same cost); ` +
      `job settings ${JSON.stringify({ workers: overrides.inferenceWorkers ?? 1, intraOpThreads: threads, ...overrides })} per pool; users seeded with a full window in every version`,
  );
  const traffic = await produceWorldEvents(kafka, topics, { users: U, count: N });
  const touched = [...traffic.eventsByUser.keys()];
  report.info(`produced ${traffic.sent} events of ${touched.length} of ${U} simulated users over ${P} partitions per topic`);

  const runOnce = async (withShadow: boolean): Promise<ShadowRun> => {
    const counts = { records: 0, bytes: 0 };
    const run = await runPipeline({
      bundle: primary,
      redis,
      topics,
      expected: N,
      overrides,
      seedUserIds: touched,
      ...(withShadow ? { shadows: [shadow] } : {}),
      instruments: { createConsumer: countingConsumer(counts) },
    });
    return { run, kafkaRecords: counts.records, kafkaBytes: counts.bytes };
  };
  const single: ShadowRun[] = [];
  const shadowed: ShadowRun[] = [];
  /** CPU µs per event of one model alone, measured after each pair at the batch and coalescing of its run alone. */
  const modelCpuUs: number[] = [];
  for (let r = 0; r < args.repeats; r++) {
    // Alternate which goes first, so that a machine getting busier or quieter favours neither.
    const order = r % 2 === 0 ? [false, true] : [true, false];
    for (const withShadow of order) {
      const result = await runOnce(withShadow);
      (withShadow ? shadowed : single).push(result);
      const { run } = result;
      report.info(
        `run ${r + 1}, ${withShadow ? 'primary + shadow' : 'primary alone  '}: ${fmt(run.eventsPerS)} events/s (${(run.ms / 1000).toFixed(1)} s, ${run.steps.length} steps, ` +
          `${run.usersPerStep.toFixed(0)} users/step); Kafka handed the job ${result.kafkaRecords} records, ${(result.kafkaBytes / 1024).toFixed(0)} KiB; ` +
          `CPU ${run.cpuUsPerEvent.toFixed(0)} µs/event; applied ${run.applied}, dead ${run.deadLettered}`,
      );
    }
    const alone = single[single.length - 1]!.run;
    const batch = Math.max(1, Math.min(256, Math.round(alone.usersPerStep)));
    const model = await ortUsersPerSecondIsolated({ modelDir: primary.directory, batch, timeSteps: primary.metadata.maxSeqLen, threads, ms: 1000 });
    modelCpuUs.push(model.cpuUsPerUser / alone.eventsPerUserStep);
    report.info(`run ${r + 1}, model alone (ORT, batch ${batch}, T=${primary.metadata.maxSeqLen}): ${model.cpuUsPerUser.toFixed(0)} CPU µs/user = ${modelCpuUs[r]!.toFixed(0)} µs/event at ${alone.eventsPerUserStep.toFixed(2)} events/user/step`);
  }

  /** A figure of the runs with the shadow, beside the same figure of the runs alone as its baseline. */
  const versusAlone = (figure: Omit<Figure, 'value'>, of: (r: ShadowRun) => number) => {
    const withShadow = spread(shadowed.map(of));
    const alone = spread(single.map(of));
    report.figure({ value: withShadow.median, spread: withShadow, ceiling: alone.median, ceilingSpread: alone, ceilingLabel: 'primary alone', ...figure });
  };
  /** The median over the pairs (each run with the shadow beside the run alone of the same repeat) of `of`. */
  const pairRatio = (of: (withShadow: ShadowRun, alone: ShadowRun) => number) => spread(shadowed.map((r, i) => of(r, single[i]!)));
  const ratios = pairRatio((r, alone) => r.run.eventsPerS / alone.run.eventsPerS);
  versusAlone(
    {
      id: 'shadow.vs_single',
      label: 'stream job events/s with a same-size shadow model vs the primary alone (same traffic, interleaved runs)',
      unit: 'events/s',
      ratio: ratios.median,
      note: `ratio = median of per-pair ratios: ${ratios.runs.map((x) => x.toFixed(2)).join(', ')}`,
      goal: { kind: 'min-ratio', target: GOAL_RATIO },
    },
    ({ run }) => run.eventsPerS,
  );
  // Events per CPU-second of the whole process: the throughput ratio with the machine's other
  // work taken out (on a shared machine the wall-clock ratio moves with everyone else's load).
  versusAlone(
    {
      id: 'shadow.events_per_cpu_s',
      label: 'stream job events per CPU-second (main thread + both pools\' workers), with the shadow vs alone',
      unit: 'events/CPU-s',
      ratio: pairRatio((r, alone) => alone.run.cpuUsPerEvent / r.run.cpuUsPerEvent).median,
    },
    ({ run }) => 1e6 / run.cpuUsPerEvent,
  );
  // One read either way: the records and bytes Kafka handed the job, per event of the topic.
  versusAlone(
    {
      id: 'shadow.kafka_records_per_event',
      label: 'Kafka records handed to the job per event produced, with the shadow vs alone (one read for every model: 1.00)',
      unit: 'records/event',
      lowerIsBetter: true,
    },
    (r) => r.kafkaRecords / N,
  );
  versusAlone(
    { id: 'shadow.kafka_bytes_per_event', label: 'Kafka key + value bytes handed to the job per event produced, with the shadow vs alone', unit: 'B/event', lowerIsBetter: true },
    (r) => r.kafkaBytes / N,
  );

  // Where the added cost goes: the CPU per event the shadow adds (CPU time, not wall time, so the
  // other work on a shared machine counts less), beside the model alone's CPU per event. The shadow
  // is the same model on the same users: 1 would be its inference alone; above 1 is the rest of its
  // lane (its states read and decoded, its windows encoded, its share of the write, its features).
  const addedCpuUs = pairRatio((r, alone) => r.run.cpuUsPerEvent - alone.run.cpuUsPerEvent);
  const modelCpu = spread(modelCpuUs);
  report.figure({
    id: 'shadow.added_cpu_vs_model',
    label: 'CPU per event the shadow adds (with shadow − alone) vs the model alone per event (ORT at the batch and coalescing of the run): 1 would be its inference alone, the rest is its own state I/O',
    unit: 'CPU µs/event',
    value: addedCpuUs.median,
    spread: addedCpuUs,
    ceiling: modelCpu.median,
    ceilingSpread: modelCpu,
    ceilingLabel: 'model alone',
    lowerIsBetter: true,
    note: `per-pair ratios ${addedCpuUs.runs.map((x, i) => (x / modelCpuUs[i]!).toFixed(2)).join(', ')}`,
  });
  report.context('settings', { events: N, users: U, partitions: P, threads, overrides, shadowVersion });
  report.context(
    'runs',
    [...single.map((r) => ({ shadow: false, ...r })), ...shadowed.map((r) => ({ shadow: true, ...r }))].map(({ run: { steps, ...run }, ...rest }) => ({ ...rest, ...run, stepCount: steps.length })),
  );
} finally {
  await deleteTopics(kafka, topics);
  redis.disconnect();
  await rm(scratch, { recursive: true, force: true });
}
report.finish(OUT_DIR);
