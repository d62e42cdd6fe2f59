// The cost of live quality (issue 14, docs/rollout.md): the stream job on the same pre-produced
// traffic with plays sampled at 0 (off), 1 % (the default) and 100 %, runs interleaved. A sampled
// play costs one extra embedding read per version and a scoring of every item; the figures are
// events/s and events per CPU-second against the run with sampling off.
import { loadModelBundle } from '../model/model-bundle.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR } from './lib/env.js';
import { type PipelineRun, runPipeline, withPreProducedTraffic } from './lib/pipeline.js';
import { Report } from './lib/report.js';
import { fmt, spread } from './lib/stats.js';

const args = benchArgs({ events: { type: 'string' }, users: { type: 'string' } });
const report = new Report('quality');
const N = numberArg(args, 'events', args.long ? 60_000 : 12_000);
const U = numberArg(args, 'users', args.long ? 1_000_000 : 100_000);
const bundle = await loadModelBundle(MODEL_DIR);
const RATES = [0, 0.01, 1] as const;
report.info(`${bundle.metadata.modelVersion}: ${bundle.metadata.numItems} items x ${bundle.metadata.embeddingDim} dims scored per sampled play; ${N} events of ${U} users; sample rates ${RATES.join(', ')}`);

await withPreProducedTraffic({ users: U, count: N }, async ({ redis, topics, touched }) => {
  const runs = new Map<number, PipelineRun[]>(RATES.map((rate) => [rate, []]));
  for (let r = 0; r < args.repeats; r++) {
    for (const rate of RATES) {
      const run = await runPipeline({ bundle, redis, topics, expected: N, seedUserIds: touched, overrides: { qualitySampleRate: rate } });
      runs.get(rate)!.push(run);
      report.info(`run ${r + 1}, sample rate ${rate}: ${fmt(run.eventsPerS)} events/s, ${fmt(1e6 / run.cpuUsPerEvent)} events per CPU-second`);
    }
  }
  const measures = [
    { id: 'events_per_s', unit: 'events/s', what: 'stream job events/s', of: (run: PipelineRun) => run.eventsPerS },
    { id: 'events_per_cpu_s', unit: 'events/CPU-s', what: 'stream job events per CPU-second', of: (run: PipelineRun) => 1e6 / run.cpuUsPerEvent },
  ];
  for (const { id, unit, what, of } of measures) {
    const off = spread(runs.get(0)!.map(of));
    for (const [rate, name] of [[0.01, '1pct'], [1, '100pct']] as const) {
      const sampled = spread(runs.get(rate)!.map(of));
      report.figure({
        id: `quality.ingest.${id}_${name}`,
        label: `${what} with ${rate * 100}% of plays scored for live quality vs sampling off (same traffic, interleaved runs)`,
        unit,
        value: sampled.median,
        spread: sampled,
        ceiling: off.median,
        ceilingSpread: off,
        ceilingLabel: 'sampling off',
      });
    }
  }
});
report.finish(OUT_DIR);
