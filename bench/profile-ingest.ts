// Child process for profile.bench.ts: runs the real stream job on a pre-produced topic (users
// already seeded under --key-prefix) until --expected messages went through, then exits, so that
// `node --cpu-prof` writes one profile per thread (main + inference worker).
import { parseArgs } from 'node:util';
import { startStreamJob } from '../consumers/stream-job.js';
import { KAFKA_BROKERS, MODEL_DIR, REDIS_URL, unique } from './lib/env.js';
import { benchLogger } from './lib/services.js';
import { sleep } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    plays: { type: 'string' },
    searches: { type: 'string' },
    'dead-letter': { type: 'string' },
    'key-prefix': { type: 'string' },
    expected: { type: 'string' },
    'intra-op-threads': { type: 'string' },
  },
});
const started = performance.now();
const job = await startStreamJob({
  modelDir: MODEL_DIR,
  kafka: { brokers: KAFKA_BROKERS, clientId: 'taste-bench-profile' },
  redis: { url: REDIS_URL },
  topics: { play: values.plays!, search: values.searches!, deadLetter: values['dead-letter']! },
  logger: benchLogger,
  groupId: unique('profile'),
  keyPrefix: values['key-prefix']!,
  ...(values['intra-op-threads'] ? { intraOpThreads: Number(values['intra-op-threads']) } : {}),
});
const t0 = performance.now();
const fromUs = Number(process.hrtime.bigint() / 1000n);
const expected = Number(values.expected);
while (job.consumer.stats.messages < expected) await sleep(5);
const ms = performance.now() - t0;
const toUs = Number(process.hrtime.bigint() / 1000n);
await job.stop();
process.stdout.write(JSON.stringify({ messages: job.consumer.stats.messages, ms, eventsPerS: (job.consumer.stats.messages * 1000) / ms, startupMs: t0 - started, fromUs, toUs }) + '\n');
