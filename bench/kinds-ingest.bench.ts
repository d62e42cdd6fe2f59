// The stream job with a stateful model against the same job with the windowed default, on the same
// pre-produced traffic, runs interleaved: events per second and events per CPU-second of the process
// (main thread + inference worker). Users are seeded warm: the windowed model with a full window,
// the stateful one with a full tail (its checkpoint starts at zero; the step's cost is the same).
import { existsSync } from 'node:fs';
import { loadModelBundle } from '../model/model-bundle.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REPO_ROOT, stringArg } from './lib/env.js';
import { type PipelineRun, runPipeline, withPreProducedTraffic } from './lib/pipeline.js';
import { Report } from './lib/report.js';
import { fmt, spread } from './lib/stats.js';

const args = benchArgs({ events: { type: 'string' }, users: { type: 'string' }, 'stateful-model': { type: 'string' } });
const report = new Report('kinds-ingest');
const N = numberArg(args, 'events', args.long ? 60_000 : 12_000);
const U = numberArg(args, 'users', args.long ? 1_000_000 : 100_000);
const shipped = `${REPO_ROOT}models/stateful`;
const statefulDir = stringArg(args, 'stateful-model', existsSync(shipped) ? shipped : `${REPO_ROOT}model/testdata/stateful-model`);
const windowed = await loadModelBundle(MODEL_DIR);
const stateful = await loadModelBundle(statefulDir);
if (stateful.metadata.kind !== 'stateful' || windowed.metadata.kind !== 'windowed') throw new Error('kinds-ingest needs a windowed TASTE_BENCH_MODEL and a stateful --stateful-model');
report.info(`windowed ${windowed.metadata.modelVersion} (L=${windowed.metadata.maxSeqLen}) vs stateful ${stateful.metadata.modelVersion} (tail ${stateful.metadata.maxSeqLen}); ${N} events of ${U} users`);

await withPreProducedTraffic({ users: U, count: N }, async ({ redis, topics, touched }) => {
  const runs: Record<'windowed' | 'stateful', PipelineRun[]> = { windowed: [], stateful: [] };
  for (let r = 0; r < args.repeats; r++) {
    for (const [kind, bundle] of [['windowed', windowed], ['stateful', stateful]] as const) {
      const run = await runPipeline({ bundle, redis, topics, expected: N, seedUserIds: touched });
      runs[kind].push(run);
      report.info(`run ${r + 1}, ${kind}: ${fmt(run.eventsPerS)} events/s, ${fmt(1e6 / run.cpuUsPerEvent)} events per CPU-second, ${run.eventsPerUserStep.toFixed(2)} events/user/step`);
    }
  }
  const perCpu = (kind: 'windowed' | 'stateful') => spread(runs[kind].map((run) => 1e6 / run.cpuUsPerEvent));
  const perS = (kind: 'windowed' | 'stateful') => spread(runs[kind].map((run) => run.eventsPerS));
  report.figure({
    id: 'kinds.ingest.events_per_cpu_s',
    label: 'stream job events per CPU-second, stateful model vs windowed default (same traffic, interleaved runs)',
    unit: 'events/CPU-s',
    value: perCpu('stateful').median,
    spread: perCpu('stateful'),
    ceiling: perCpu('windowed').median,
    ceilingSpread: perCpu('windowed'),
    ceilingLabel: 'windowed default',
    goal: { kind: 'min-ratio', target: 2 },
  });
  report.figure({
    id: 'kinds.ingest.events_per_s',
    label: 'stream job events/s, stateful model vs windowed default',
    unit: 'events/s',
    value: perS('stateful').median,
    spread: perS('stateful'),
    ceiling: perS('windowed').median,
    ceilingSpread: perS('windowed'),
    ceilingLabel: 'windowed default',
  });
});
report.finish(OUT_DIR);
