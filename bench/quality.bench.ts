// The cost of live quality (issue 14, docs/rollout.md): the stream job on the same pre-produced
// traffic with plays sampled at 0 (off), 1 % (the default) and 100 %, runs interleaved. A sampled
// play costs one extra embedding read per version and a scoring of every item; the figures are
// events/s and events per CPU-second against the run with sampling off.
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL } from './lib/env.js';
import { type PipelineRun, runPipeline } from './lib/pipeline.js';
import { Report } from './lib/report.js';
import { benchKafka, benchTopics, createTopics, deleteTopics } from './lib/services.js';
import { fmt, spread } from './lib/stats.js';
import { produceWorldEvents } from './lib/traffic.js';

const args = benchArgs({ events: { type: 'string' }, users: { type: 'string' } });
const report = new Report('quality');
const N = numberArg(args, 'events', args.long ? 60_000 : 12_000);
const U = numberArg(args, 'users', args.long ? 1_000_000 : 100_000);
const bundle = await loadModelBundle(MODEL_DIR);
const RATES = [0, 0.01, 1] as const;
report.info(`${bundle.metadata.modelVersion}: ${bundle.metadata.numItems} items x ${bundle.metadata.embeddingDim} dims scored per sampled play; ${N} events of ${U} users; sample rates ${RATES.join(', ')}`);

const kafka = benchKafka();
const topics = benchTopics();
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
await waitForRedis(redis);
await createTopics(kafka, topics, 4);
try {
  const traffic = await produceWorldEvents(kafka, topics, { users: U, count: N });
  const touched = [...traffic.eventsByUser.keys()];
  const runs = new Map<number, PipelineRun[]>(RATES.map((rate) => [rate, []]));
  for (let r = 0; r < args.repeats; r++) {
    for (const rate of RATES) {
      const run = await runPipeline({ bundle, redis, topics, expected: N, seedUserIds: touched, overrides: { qualitySampleRate: rate } });
      runs.get(rate)!.push(run);
      report.info(`run ${r + 1}, sample rate ${rate}: ${fmt(run.eventsPerS)} events/s, ${fmt(1e6 / run.cpuUsPerEvent)} events per CPU-second`);
    }
  }
  const perS = (rate: number) => spread(runs.get(rate)!.map((run) => run.eventsPerS));
  const perCpu = (rate: number) => spread(runs.get(rate)!.map((run) => 1e6 / run.cpuUsPerEvent));
  for (const [rate, name] of [[0.01, '1pct'], [1, '100pct']] as const) {
    report.figure({
      id: `quality.ingest.events_per_s_${name}`,
      label: `stream job events/s with ${rate * 100}% of plays scored for live quality vs sampling off (same traffic, interleaved runs)`,
      unit: 'events/s',
      value: perS(rate).median,
      spread: perS(rate),
      ceiling: perS(0).median,
      ceilingSpread: perS(0),
      ceilingLabel: 'sampling off',
    });
    report.figure({
      id: `quality.ingest.events_per_cpu_s_${name}`,
      label: `stream job events per CPU-second with ${rate * 100}% of plays scored vs sampling off`,
      unit: 'events/CPU-s',
      value: perCpu(rate).median,
      spread: perCpu(rate),
      ceiling: perCpu(0).median,
      ceilingSpread: perCpu(0),
      ceilingLabel: 'sampling off',
    });
  }
} finally {
  await deleteTopics(kafka, topics);
  redis.disconnect();
}
report.finish(OUT_DIR);
