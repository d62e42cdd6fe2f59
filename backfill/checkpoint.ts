import { createHash } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { formatShard, type Shard } from './shard.js';
import type { SourceCursor } from './source.js';

export const CHECKPOINT_FORMAT = 'taste.backfill.checkpoint.v1';

/** What a source was when the backfill started; a resumed run must find the same. */
export interface CheckpointSource {
  label: string;
  /** `file/<digest>:<partition>` for a file, `<topic>:<partition>` for a Kafka range. */
  key: string;
  /** Kafka ranges: the offsets resolved at the start (the log end moves; the range must not). */
  from?: number;
  to?: number;
}

export interface CheckpointCounts {
  records: number;
  events: number;
  applied: number;
  duplicates: number;
  invalid: number;
  filtered: number;
  writes: number;
  conflicts: number;
  /** Events dropped because their user was erased after them (tombstone hits); absent in older checkpoints. */
  erased: number;
  steps: number;
}

export interface Checkpoint {
  format: typeof CHECKPOINT_FORMAT;
  /** Hash of every option that shapes the written state: a run with other options may not resume it. */
  fingerprint: string;
  modelVersion: string;
  keyPrefix: string;
  /** The shard the backfill is (null or absent, as in older checkpoints: unsharded). */
  shard?: Shard | null;
  sources: CheckpointSource[];
  /** The source being read (sources before it are done) and where in it; `sources.length` once all are. */
  source: number;
  cursor: SourceCursor | null;
  done: boolean;
  /** Totals so far, so the summary of a resumed run covers the whole backfill. */
  counts: CheckpointCounts;
  /** Milliseconds spent so far by earlier runs of this backfill. */
  elapsedMs: number;
  updatedAt: string;
}

export function fingerprintOf(parts: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

export async function loadCheckpoint(path: string): Promise<Checkpoint | undefined> {
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `cannot read checkpoint ${path}: ${(error as Error).message}`, { cause: error });
  }
  let checkpoint: Checkpoint;
  try {
    checkpoint = JSON.parse(text) as Checkpoint;
  } catch (cause) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `checkpoint ${path} is not JSON (it is written atomically, so it was not written by taste backfill)`, { cause });
  }
  if (checkpoint.format !== CHECKPOINT_FORMAT) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `checkpoint ${path} has format ${JSON.stringify(checkpoint.format)}, expected ${CHECKPOINT_FORMAT}`);
  }
  return checkpoint;
}

/**
 * Replaces the checkpoint atomically: write a temporary file beside it, flush it to disk, rename
 * it over the old one, flush the directory. A crash at any point leaves the old or the new
 * checkpoint, never a torn one.
 */
export async function saveCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(JSON.stringify(checkpoint, null, 2) + '\n');
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  const directory = await open(dirname(path), 'r');
  try {
    await directory.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await directory.close();
  }
}

/** Why a checkpoint cannot be resumed with these options, or undefined when it can. */
export function checkpointMismatch(checkpoint: Checkpoint, expected: Pick<Checkpoint, 'fingerprint' | 'modelVersion' | 'keyPrefix' | 'shard' | 'sources'>): string | undefined {
  // First: another shard's checkpoint also has other sources, and "its sources differ" would hide why.
  const made = checkpoint.shard ?? undefined;
  const wanted = expected.shard ?? undefined;
  if ((made && formatShard(made)) !== (wanted && formatShard(wanted))) {
    return `it was made for ${made ? `shard ${formatShard(made)}` : 'an unsharded run'}, not ${wanted ? `shard ${formatShard(wanted)}` : 'an unsharded run'} (each shard keeps its own checkpoint file)`;
  }
  if (checkpoint.modelVersion !== expected.modelVersion) {
    return `it was made for model version ${checkpoint.modelVersion}, not ${expected.modelVersion}`;
  }
  if (checkpoint.keyPrefix !== expected.keyPrefix) return `it was made for key prefix "${checkpoint.keyPrefix}", not "${expected.keyPrefix}"`;
  const labels = (sources: CheckpointSource[]) => sources.map((source) => source.key).join(',');
  if (labels(checkpoint.sources) !== labels(expected.sources)) {
    const changed = checkpoint.sources.find((source, index) => expected.sources[index]?.key !== source.key);
    return changed
      ? `its sources differ (${changed.label} is not what it was: changed, moved in the order or missing)`
      : `it has ${checkpoint.sources.length} sources, these options give ${expected.sources.length}`;
  }
  if (checkpoint.fingerprint !== expected.fingerprint) {
    return 'it was made with other options (--since/--until, --user, --chunk-size, --updated-at, --min-event-time, --file-identity or --group-by-user)';
  }
  return undefined;
}
