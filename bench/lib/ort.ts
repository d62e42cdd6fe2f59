import ort from 'onnxruntime-node';
import { MODEL_OUTPUT } from '../../model/contract.js';
import { buildSequenceBatch, type SequenceBatch, type StepBatch } from '../../model/features.js';
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

export function feedsOf(batch: SequenceBatch): Record<string, ort.Tensor> {
  const { batchSize: b, timeSteps: t, queryTokens: q } = batch;
  return {
    item_ids: new ort.Tensor('int64', batch.itemIds, [b, t]),
    event_kinds: new ort.Tensor('int64', batch.eventKinds, [b, t]),
    query_tokens: new ort.Tensor('int64', batch.queryTokenIds, [b, t, q]),
    gap_buckets: new ort.Tensor('int64', batch.gapBuckets, [b, t]),
    age_buckets: new ort.Tensor('int64', batch.ageBuckets, [b, t]),
  };
}

/** The step graph's inputs (model/inference-worker.ts runStep builds the same). */
export function stepFeedsOf(batch: StepBatch): Record<string, ort.Tensor> {
  const { batchSize: b, timeSteps: t, queryTokens: q, stateDim: s } = batch;
  return {
    state: new ort.Tensor('float32', batch.state, [b, s]),
    item_ids: new ort.Tensor('int64', batch.itemIds, [b, t]),
    event_kinds: new ort.Tensor('int64', batch.eventKinds, [b, t]),
    query_tokens: new ort.Tensor('int64', batch.queryTokenIds, [b, t, q]),
    gap_buckets: new ort.Tensor('int64', batch.gapBuckets, [b, t]),
    checkpoint_at: new ort.Tensor('int64', batch.checkpointAt, [b]),
  };
}

export function syntheticFeeds(bundle: ModelBundle, batchSize: number, timeSteps: number, seed = 1): Record<string, ort.Tensor> {
  return feedsOf(buildSequenceBatch(syntheticWindows(batchSize, timeSteps, bundle.metadata, seed), bundle.metadata.queryTokens));
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
