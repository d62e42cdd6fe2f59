import { describeError, isRetryable } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { withRetry } from '../common/retry.js';
import type { Updater, UpdateSummary } from '../updater/updater.js';
import type { SourcedEvent } from '../events/window-event.js';
import { forEachConcurrently, planBatches } from './batches.js';
import {
  CHECKPOINT_FORMAT,
  type Checkpoint,
  type CheckpointCounts,
  type CheckpointSource,
  saveCheckpoint,
} from './checkpoint.js';
import { type BadRecord, type Chunk, ChunkReader, type Position } from './chunks.js';
import { DistinctCount } from './distinct-count.js';
import type { SourceReader } from './source.js';

export interface BackfillOptions {
  /** Opened sources, in reading order. */
  sources: readonly SourceReader[];
  /** Their identities, recorded in the checkpoint (same order). */
  sourceIdentities: readonly CheckpointSource[];
  /** The stream's updater (read, dedup by offset, merge, infer, compare-and-set write). */
  updater: Updater;
  modelVersion: string;
  keyPrefix: string;
  /** Hash of the options that shape the written state (`fingerprintOf`). */
  fingerprint: string;
  /** Users per updater batch. @default 256 */
  batchSize?: number;
  /** Batches in flight at once (they never share a user). @default 2 */
  concurrency?: number;
  /** Records per step: grouped by user, applied, then checkpointed. @default 50000 */
  chunkSize?: number;
  /** Checkpoint file, written after each step; none: the run cannot be resumed. */
  checkpointPath?: string | undefined;
  /** A checkpoint loaded (and checked) by the caller: the run continues from it. */
  resumeFrom?: Checkpoint | undefined;
  /** Stop at the first bad record. @default false */
  failFast?: boolean;
  /** Nothing is written, not even the checkpoint (the updater given writes nothing either). */
  dryRun?: boolean;
  /** Stops after the step in progress (its checkpoint written). */
  signal?: AbortSignal;
  logger: Logger;
  onProgress?: (progress: BackfillProgress) => void;
  onInvalid?: (bad: BadRecord) => void;
  /** Attempts per batch on retryable errors (Redis down, a worker crash). @default 8 */
  attempts?: number;
}

export interface BackfillProgress extends CheckpointCounts {
  /** Progress units (bytes, rows, offsets) over every source: done, in all, and done before this run. */
  unitsDone: number;
  unitsTotal: number;
  unitsAtStart: number;
  /** Milliseconds this run has taken, and all runs of this backfill. */
  runMs: number;
  elapsedMs: number;
  /** Records read by this run (the rate's numerator). */
  runRecords: number;
  runEvents: number;
  source: string | undefined;
}

export const StopReasons = { COMPLETE: 'complete', SIGNAL: 'signal', BAD_RECORD: 'bad-record', ALREADY_COMPLETE: 'already-complete' } as const;
export type StopReason = (typeof StopReasons)[keyof typeof StopReasons];

export interface BackfillSummary extends BackfillProgress {
  /** Distinct users with events in this run (exact up to 100k, then estimated). */
  users: number;
  usersExact: boolean;
  stoppedBy: StopReason;
  bad?: BadRecord;
  resumed: boolean;
}

const emptyCounts = (): CheckpointCounts => ({
  records: 0,
  events: 0,
  applied: 0,
  duplicates: 0,
  invalid: 0,
  filtered: 0,
  writes: 0,
  conflicts: 0,
  steps: 0,
});

/**
 * Rebuilds users' state from history through the stream's updater. Records are read in order and
 * cut into steps of `chunkSize` records; a step's events are grouped by user into batches that
 * share no user (so they run concurrently without reordering any user's events), applied, and
 * then the checkpoint moves past the step. Steps never overlap: a user's events of step k are
 * written before any of step k+1 is read for the updater, which keeps each source's offsets
 * applied in order per user — the high-water marks' premise. See docs/backfill.md.
 */
export async function runBackfill(options: BackfillOptions): Promise<BackfillSummary> {
  const batchSize = options.batchSize ?? 256;
  const concurrency = options.concurrency ?? 2;
  const chunkSize = options.chunkSize ?? 50_000;
  const attempts = options.attempts ?? 8;
  const { sources, logger, updater } = options;
  const started = performance.now();
  const resume = options.resumeFrom;
  const counts: CheckpointCounts = resume ? { ...resume.counts } : emptyCounts();
  const priorMs = resume?.elapsedMs ?? 0;
  const users = new DistinctCount();
  let runRecords = 0;
  let runEvents = 0;
  const unitsTotal = sources.reduce((sum, source) => sum + source.units, 0);
  const unitsBefore = prefixSums(sources.map((source) => source.units));

  const unitsAt = (position: Position): number => {
    const source = sources[position.source];
    return source ? unitsBefore[position.source]! + (position.cursor ? source.unitsDone(position.cursor) : 0) : unitsTotal;
  };
  const progressAt = (position: Position): BackfillProgress => {
    const runMs = performance.now() - started;
    return {
      ...counts,
      unitsDone: unitsAt(position),
      unitsTotal,
      unitsAtStart,
      runMs,
      elapsedMs: priorMs + runMs,
      runRecords,
      runEvents,
      source: sources[position.source]?.label,
    };
  };
  const finish = (position: Position, stoppedBy: StopReason, bad?: BadRecord): BackfillSummary => ({
    ...progressAt(position),
    users: users.value,
    usersExact: users.exact,
    stoppedBy,
    resumed: resume !== undefined,
    ...(bad ? { bad } : {}),
  });

  const start: Position = resume ? { source: resume.source, cursor: resume.cursor ?? undefined } : { source: 0, cursor: undefined };
  const unitsAtStart = unitsAt(start);
  if (resume?.done) return finish({ source: sources.length, cursor: undefined }, StopReasons.ALREADY_COMPLETE);

  const reader = new ChunkReader({
    sources,
    from: start,
    chunkSize,
    stopAtBad: options.failFast ?? false,
    ...(options.onInvalid ? { onInvalid: options.onInvalid } : {}),
  });

  const applyBatch = async (events: SourcedEvent[]): Promise<UpdateSummary> =>
    withRetry(() => updater.apply(events), {
      attempts,
      maxDelayMs: 5_000,
      shouldRetry: isRetryable,
      onRetry: (error, attempt, delayMs) => logger.warn('apply failed; retrying', { attempt, delayMs, error: describeError(error) }),
    });

  const applyChunk = async (chunk: Chunk): Promise<void> => {
    const batches = planBatches(chunk.events, batchSize);
    await forEachConcurrently(batches, concurrency, async (batch) => {
      let previous: string | undefined;
      for (const event of batch) {
        // A user's events are adjacent in its batch: one count per user per step.
        if (event.userId !== previous) users.add(event.userId);
        previous = event.userId;
      }
      const summary = await applyBatch(batch);
      counts.applied += summary.applied;
      counts.duplicates += summary.duplicates;
      counts.writes += summary.writes;
      counts.conflicts += summary.conflicts;
      for (const rejected of summary.rejected) {
        counts.invalid += rejected.events.length;
        options.onInvalid?.({
          where: `user ${rejected.userId}`,
          reason: rejected.reason,
          detail: `${rejected.events.length} events not applied: ${rejected.detail}`,
        });
      }
    });
  };

  const save = async (position: Position, done: boolean): Promise<void> => {
    if (!options.checkpointPath || options.dryRun) return;
    await saveCheckpoint(options.checkpointPath, {
      format: CHECKPOINT_FORMAT,
      fingerprint: options.fingerprint,
      modelVersion: options.modelVersion,
      keyPrefix: options.keyPrefix,
      sources: [...options.sourceIdentities],
      source: position.source,
      cursor: position.cursor ?? null,
      done,
      counts,
      elapsedMs: priorMs + (performance.now() - started),
      updatedAt: new Date().toISOString(),
    });
  };

  let position = start;
  let current: Promise<Chunk | undefined> = reader.next();
  try {
    for (;;) {
      const chunk = await current;
      if (!chunk) {
        position = { source: sources.length, cursor: undefined };
        await save(position, true);
        return finish(position, StopReasons.COMPLETE);
      }
      if (chunk.bad) return finish(position, StopReasons.BAD_RECORD, chunk.bad);
      // Read the next step while this one is applied: parsing overlaps inference and Redis.
      current = chunk.exhausted ? Promise.resolve(undefined) : reader.next();
      await applyChunk(chunk);
      counts.records += chunk.records;
      counts.events += chunk.events.length;
      counts.invalid += chunk.invalid;
      counts.filtered += chunk.filtered;
      counts.steps++;
      runRecords += chunk.records;
      runEvents += chunk.events.length;
      position = chunk.exhausted ? { source: sources.length, cursor: undefined } : chunk.end;
      await save(position, chunk.exhausted);
      options.onProgress?.(progressAt(position));
      if (chunk.exhausted) return finish(position, StopReasons.COMPLETE);
      if (options.signal?.aborted) return finish(position, StopReasons.SIGNAL);
    }
  } finally {
    await current.catch(() => undefined);
    await reader.close();
  }
}

function prefixSums(values: readonly number[]): number[] {
  const sums: number[] = [];
  let total = 0;
  for (const value of values) {
    sums.push(total);
    total += value;
  }
  return sums;
}
