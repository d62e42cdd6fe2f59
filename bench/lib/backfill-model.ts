import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type ort from 'onnxruntime-node';
import type { WindowEvent } from '../../events/window-event.js';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { MODEL_OUTPUT } from '../../model/contract.js';
import { buildSequenceBatch } from '../../model/features.js';
import type { ModelMetadata } from '../../model/contract.js';
import type { Embedder } from '../../updater/updater.js';
import { REPO_ROOT } from './env.js';
import { feedsOf } from './ort.js';
import { nowMs } from './stats.js';
import { syntheticWindows } from './windows.js';

/** One inference call of a backfill: users (rows) and the longest window, which sets the tensor's length. */
export interface EmbedCall {
  rows: number;
  length: number;
}

/** The pool's largest run: a call of more rows is run in pieces of at most this many. */
const POOL_MAX_BATCH = 256;

/** Records each call the backfill makes to the inference pool (runBackfillJob's instrumentEmbedder). */
export function recordEmbedCalls(calls: EmbedCall[]): (inner: Embedder) => Embedder {
  return (inner) => ({
    embed: (windows: readonly (readonly WindowEvent[])[]) => {
      calls.push({ rows: windows.length, length: Math.max(1, ...windows.map((window) => window.length)) });
      return inner.embed(windows);
    },
  });
}

/**
 * The time the model alone needs for the recorded calls: each replayed on pre-built tensors of its
 * shape with onnxruntime-node and nothing else running, after one warm-up run.
 */
export async function replayEmbedCallsMs(session: ort.InferenceSession, metadata: ModelMetadata, calls: readonly EmbedCall[]): Promise<number> {
  const cache = new Map<string, Record<string, ort.Tensor>>();
  const plan: Record<string, ort.Tensor>[] = [];
  for (const { rows, length } of calls) {
    for (let start = 0; start < rows; start += POOL_MAX_BATCH) {
      const b = Math.min(POOL_MAX_BATCH, rows - start);
      const key = `${b}x${length}`;
      let feeds = cache.get(key);
      if (!feeds) {
        feeds = feedsOf(buildSequenceBatch(syntheticWindows(b, length, metadata, b * 100 + length), metadata.queryTokens));
        cache.set(key, feeds);
      }
      plan.push(feeds);
    }
  }
  if (plan.length === 0) return 0;
  await session.run(plan[0]!, [MODEL_OUTPUT]); // warm-up
  const start = nowMs();
  for (const feeds of plan) await session.run(feeds, [MODEL_OUTPUT]);
  return nowMs() - start;
}

/** `taste simulate` (seed 7) into `path`: the simulated listeners the backfill benches read. */
export function simulateJsonl(path: string, users: number, days: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/cli/main.js'), 'simulate', '--users', String(users), '--days', String(days), '--seed', '7', '--out', path, '--quiet'], {
      stdio: 'inherit',
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`taste simulate exited ${code}`))));
  });
}

export async function dropKeys(redis: RedisClient, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
