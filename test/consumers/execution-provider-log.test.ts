import test from 'ava';
import { createLogger } from '../../common/logger.js';
import { startTestJob, uniqueTopics } from '../helpers/pipeline.js';

// `--execution-provider auto` in the stream job: the log says which provider it chose and why it
// passed over the ones before it, and the job's start line names the same provider.

interface Line {
  msg: string;
  provider?: string;
  skipped?: { provider: string; reason: string }[];
}

test('a job started with auto logs its choice, the providers it passed over with their reasons, and runs on it', async (t) => {
  const lines: Line[] = [];
  const logger = createLogger('info', {}, (line) => lines.push(JSON.parse(line) as Line));
  const job = await startTestJob({ topics: uniqueTopics(), logger, executionProvider: 'auto' });
  try {
    const chosen = lines.find((line) => line.msg === 'execution provider chosen (auto)');
    const started = lines.find((line) => line.msg === 'stream job started');
    t.truthy(chosen, JSON.stringify(lines.map((line) => line.msg)));
    t.is(started?.provider, chosen?.provider);
    // The order auto tries, written out: each provider before the chosen one was passed over, with a reason.
    const order = ['cuda', 'webgpu', 'cpu'];
    const before = order.slice(0, order.indexOf(chosen!.provider!));
    t.deepEqual(chosen!.skipped!.map((entry) => entry.provider), before);
    for (const entry of chosen!.skipped!) t.regex(entry.reason, new RegExp(`${entry.provider} execution provider`));
  } finally {
    await job.stop();
  }
});
