// The model-only ceiling in a fresh process (no benchmark heap, no garbage left by the job just
// stopped): onnxruntime-node alone on pre-built tensors. Prints one JSON line.
//   node dist/bench/ort-child.js --batch 256 --time-steps 50 --threads 2 --ms 1000 [--model DIR]
import { parseArgs } from 'node:util';
import { loadModelBundle } from '../model/model-bundle.js';
import { MODEL_DIR } from './lib/env.js';
import { ortSession, runOnce, syntheticFeeds } from './lib/ort.js';
import { quantile, timeLoop } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '256' },
    'time-steps': { type: 'string', default: '50' },
    threads: { type: 'string', default: '1' },
    ms: { type: 'string', default: '1000' },
    model: { type: 'string', default: MODEL_DIR },
  },
});
const bundle = await loadModelBundle(values.model!);
const session = await ortSession(bundle, Number(values.threads));
const batch = Number(values.batch);
const feeds = syntheticFeeds(bundle, batch, Number(values['time-steps']), batch + Number(values['time-steps']));
for (let i = 0; i < 2; i++) await runOnce(session, feeds);
const cpu0 = process.cpuUsage();
const { perRunMs, runs } = await timeLoop(() => runOnce(session, feeds), { minMs: Number(values.ms), minRuns: 3, warmup: 0 });
const cpu = process.cpuUsage(cpu0);
await session.release();
process.stdout.write(
  JSON.stringify({
    usersPerS: (batch * 1000) / quantile(perRunMs, 0.5),
    // CPU of the whole process (all ORT threads, spinning included) per user: noise-robust.
    cpuUsPerUser: (cpu.user + cpu.system) / (runs * batch),
  }) + '\n',
);
