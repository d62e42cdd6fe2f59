import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The parent side of bench/backfill-shard-child.ts: each backfill (or ceiling) run is a fresh
// process, so its CPU time and peak RSS are its own; it prints one JSON line as it ends.

const CHILD = fileURLToPath(new URL('../backfill-shard-child.js', import.meta.url));

/** `backfill-shard-child backfill …`: one backfill run (a shard, the whole input, or grouped). */
export interface BackfillRun {
  events: number;
  users: number;
  writes: number;
  runMs: number;
  wallMs: number;
  inferredUsers: number;
  /** --group-by-user only: reading the input into DuckDB and sorting it, both inside `runMs`. */
  grouping?: { readMs: number; sortMs: number };
  cpuMs: number;
  maxRssBytes: number;
}

/** `backfill-shard-child ceiling …`: read + validate + featurize, then the model alone on a run's recorded calls. */
export interface CeilingRun {
  events: number;
  readMs: number;
  /** The fastest of `modelMsByThreads`. */
  modelMs: number;
  modelMsByThreads: Record<string, number>;
  cpuMs: number;
  maxRssBytes: number;
}

/** Runs the child with `childArgs` and resolves with the JSON of its last stdout line. */
export function runBackfillChild<T>(childArgs: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...childArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`backfill-shard-child ${childArgs[0]} exited ${code}: ${stdout}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as T);
    });
  });
}
