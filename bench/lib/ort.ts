import ort from 'onnxruntime-node';
import { MODEL_OUTPUT } from '../../model/contract.js';
import { buildSequenceBatch } from '../../model/features.js';
import { windowFeeds } from '../../model/ort-feeds.js';
import type { ModelBundle } from '../../model/model-bundle.js';
import { quantile, timeLoop } from './stats.js';
import { syntheticWindows } from './windows.js';

/** A session with the options of model/inference-worker.ts (spinning is ORT's default there). */
export function ortSession(bundle: ModelBundle, intraOpNumThreads: number, allowSpinning = true): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bundle.onnxPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    ...(allowSpinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
  });
}

// The same feeds as the inference worker's (model/ort-feeds.ts), under the names the benchmarks use.
export { stepFeeds as stepFeedsOf, windowFeeds as feedsOf } from '../../model/ort-feeds.js';

export function syntheticFeeds(bundle: ModelBundle, batchSize: number, timeSteps: number, seed = 1): Record<string, ort.Tensor> {
  return windowFeeds(buildSequenceBatch(syntheticWindows(batchSize, timeSteps, bundle.metadata, seed), bundle.metadata.queryTokens));
}

export function runOnce(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<unknown> {
  return session.run(feeds, [MODEL_OUTPUT]);
}

/** Users per second of ORT alone on pre-built tensors (median call over at least `minMs`). */
export async function ortUsersPerSecond(
  session: ort.InferenceSession,
  bundle: ModelBundle,
  batchSize: number,
  timeSteps: number,
  minMs: number,
): Promise<number> {
  const feeds = syntheticFeeds(bundle, batchSize, timeSteps, batchSize + timeSteps);
  const { perRunMs } = await timeLoop(() => runOnce(session, feeds), { minMs, minRuns: 3, warmup: 2 });
  return (batchSize * 1000) / quantile(perRunMs, 0.5);
}

/**
 * `ortUsersPerSecond` in a fresh child process (bench/ort-child.ts): a ceiling that does not share
 * a heap, a garbage collector or leftover threads with the benchmark that measures the figure.
 */
export async function ortUsersPerSecondIsolated(options: {
  modelDir: string;
  batch: number;
  timeSteps: number;
  threads: number;
  ms: number;
}): Promise<{ usersPerS: number; cpuUsPerUser: number }> {
  const { execFile } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const script = fileURLToPath(new URL('../ort-child.js', import.meta.url));
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [script, '--model', options.modelDir, '--batch', String(options.batch), '--time-steps', String(options.timeSteps), '--threads', String(options.threads), '--ms', String(options.ms)],
      (error, out) => (error ? reject(error) : resolve(out)),
    ),
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as { usersPerS: number; cpuUsPerUser: number };
}
