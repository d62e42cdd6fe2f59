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
import { type BadRecord, type Chunk, ChunkReader, type ChunkStream, type Position } from './chunks.js';
import { DistinctCount } from './distinct-count.js';
import type { Shard } from './shard.js';
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
  /**
   * The steps from a position on; default: a ChunkReader over `sources` (records in reading order,
   * `chunkSize` a step). A grouped run gives GroupedInput's (backfill/grouped-input.ts).
   */
  chunks?: (from: Position) => ChunkStream;
  /** End a step where a source ends (ChunkReader's `splitAtSources`). @default false */
  splitAtSources?: boolean;
  /** The shard this run is, recorded in the checkpoint; none: the whole input. */
  shard?: Shard | undefined;
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
  erased: 0,
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
  const run = new BackfillRun(options);
  const resume = options.resumeFrom;
  const end: Position = { source: options.sources.length, cursor: undefined };
  if (resume?.done) return run.finish(end, StopReasons.ALREADY_COMPLETE);

  const reader =
    options.chunks?.(run.start) ??
    new ChunkReader({
      sources: options.sources,
      from: run.start,
      chunkSize: options.chunkSize ?? 50_000,
      stopAtBad: options.failFast ?? false,
      splitAtSources: options.splitAtSources ?? false,
      ...(options.onInvalid ? { onInvalid: options.onInvalid } : {}),
    });
  let position = run.start;
  let current: Promise<Chunk | undefined> = reader.next();
  try {
    for (;;) {
      const chunk = await current;
      if (!chunk) {
        await run.save(end, true);
        return run.finish(end, StopReasons.COMPLETE);
      }
      if (chunk.bad) return run.finish(position, StopReasons.BAD_RECORD, chunk.bad);
      // Read the next step while this one is applied: parsing overlaps inference and Redis.
      current = chunk.exhausted ? Promise.resolve(undefined) : reader.next();
      await run.apply(chunk);
      position = chunk.exhausted ? end : chunk.end;
      await run.save(position, chunk.exhausted);
      options.onProgress?.(run.progressAt(position));
      if (chunk.exhausted) return run.finish(position, StopReasons.COMPLETE);
      if (options.signal?.aborted) return run.finish(position, StopReasons.SIGNAL);
    }
  } finally {
    await current.catch(() => undefined);
    await reader.close();
  }
}

/** One run's state: its counts (carried over from the checkpoint), its clock, where each source's units start; and the step's work. */
class BackfillRun {
  /** Where this run starts reading: the checkpoint's position, or the first source. */
  readonly start: Position;
  readonly #options: BackfillOptions;
  readonly #counts: CheckpointCounts;
  readonly #users = new DistinctCount();
  readonly #started = performance.now();
  readonly #priorMs: number;
  readonly #unitsTotal: number;
  readonly #unitsBefore: number[];
  #runRecords = 0;
  #runEvents = 0;

  constructor(options: BackfillOptions) {
    const { sources, resumeFrom: resume } = options;
    this.#options = options;
    this.#counts = resume ? { ...emptyCounts(), ...resume.counts } : emptyCounts();
    this.#priorMs = resume?.elapsedMs ?? 0;
    this.#unitsTotal = sources.reduce((sum, source) => sum + source.units, 0);
    this.#unitsBefore = prefixSums(sources.map((source) => source.units));
    this.start = resume ? { source: resume.source, cursor: resume.cursor ?? undefined } : { source: 0, cursor: undefined };
  }

  /** Applies one step's events, batch by batch (concurrently, never two batches with one user), and counts the step. */
  async apply(chunk: Chunk): Promise<void> {
    const counts = this.#counts;
    const batches = planBatches(chunk.events, this.#options.batchSize ?? 256);
    await forEachConcurrently(batches, this.#options.concurrency ?? 2, async (batch) => {
      this.#countUsers(batch);
      this.#countApplied(await this.#applyBatch(batch));
    });
    counts.records += chunk.records;
    counts.events += chunk.events.length;
    counts.invalid += chunk.invalid;
    counts.filtered += chunk.filtered;
    counts.steps++;
    this.#runRecords += chunk.records;
    this.#runEvents += chunk.events.length;
  }

  /** Writes the checkpoint at `position` (not in a dry run, nor without a checkpoint path). */
  async save(position: Position, done: boolean): Promise<void> {
    const options = this.#options;
    if (!options.checkpointPath || options.dryRun) return;
    await saveCheckpoint(options.checkpointPath, {
      format: CHECKPOINT_FORMAT,
      fingerprint: options.fingerprint,
      modelVersion: options.modelVersion,
      keyPrefix: options.keyPrefix,
      shard: options.shard ?? null,
      sources: [...options.sourceIdentities],
      source: position.source,
      cursor: position.cursor ?? null,
      done,
      counts: this.#counts,
      elapsedMs: this.#priorMs + (performance.now() - this.#started),
      updatedAt: new Date().toISOString(),
    });
  }

  progressAt(position: Position): BackfillProgress {
    const runMs = performance.now() - this.#started;
    return {
      ...this.#counts,
      unitsDone: this.#unitsAt(position),
      unitsTotal: this.#unitsTotal,
      // Not fixed at construction: a grouped input knows how its rows map to units only once loaded.
      unitsAtStart: this.#unitsAt(this.start),
      runMs,
      elapsedMs: this.#priorMs + runMs,
      runRecords: this.#runRecords,
      runEvents: this.#runEvents,
      source: this.#options.sources[position.source]?.label,
    };
  }

  finish(position: Position, stoppedBy: StopReason, bad?: BadRecord): BackfillSummary {
    return {
      ...this.progressAt(position),
      users: this.#users.value,
      usersExact: this.#users.exact,
      stoppedBy,
      resumed: this.#options.resumeFrom !== undefined,
      ...(bad ? { bad } : {}),
    };
  }

  #unitsAt(position: Position): number {
    const source = this.#options.sources[position.source];
    return source ? this.#unitsBefore[position.source]! + (position.cursor ? source.unitsDone(position.cursor) : 0) : this.#unitsTotal;
  }

  #applyBatch(events: SourcedEvent[]): Promise<UpdateSummary> {
    const { updater, logger } = this.#options;
    return withRetry(() => updater.apply(events), {
      attempts: this.#options.attempts ?? 8,
      maxDelayMs: 5_000,
      shouldRetry: isRetryable,
      onRetry: (error, attempt, delayMs) => logger.warn('apply failed; retrying', { attempt, delayMs, error: describeError(error) }),
    });
  }

  #countUsers(batch: readonly SourcedEvent[]): void {
    let previous: string | undefined;
    for (const event of batch) {
      // A user's events are adjacent in its batch: one count per user per step.
      if (event.userId !== previous) this.#users.add(event.userId);
      previous = event.userId;
    }
  }

  #countApplied(summary: UpdateSummary): void {
    const counts = this.#counts;
    counts.applied += summary.applied;
    counts.duplicates += summary.duplicates;
    counts.writes += summary.writes;
    counts.conflicts += summary.conflicts;
    counts.erased += summary.tombstoneHits;
    for (const rejected of summary.rejected) {
      counts.invalid += rejected.events.length;
      this.#options.onInvalid?.({
        where: `user ${rejected.userId}`,
        reason: rejected.reason,
        detail: `${rejected.events.length} events not applied: ${rejected.detail}`,
      });
    }
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
