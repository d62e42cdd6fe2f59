import type { SourcedEvent } from '../events/window-event.js';
import { ownsUser, type Shard } from './shard.js';

/**
 * Where reading stands in one source: `at` is the last position read (a line number for JSONL, a
 * row count for Parquet, an offset for Kafka), `next` where reading resumes (a byte offset for
 * JSONL, a row index for Parquet, an offset for Kafka).
 */
export interface SourceCursor {
  at: number;
  next: number;
}

export type RecordOutcome =
  | { type: 'event'; event: SourcedEvent }
  | { type: 'invalid'; reason: string; detail: string }
  /** Left out by --user or --since/--until. */
  | { type: 'filtered' };

/** One line, row or Kafka record, with the cursor just after it. */
export interface SourceRecord {
  at: number;
  next: number;
  outcome: RecordOutcome;
}

/** Users and event times a backfill keeps; the rest is read and counted as filtered. */
export interface RecordFilter {
  users?: ReadonlySet<string> | undefined;
  /** Files: only the users of this shard (the others' records still count toward each step's size). */
  shard?: Shard | undefined;
  sinceMs?: number | undefined;
  untilMs?: number | undefined;
}

export function keepsUser(filter: RecordFilter, userId: string): boolean {
  return (filter.users === undefined || filter.users.has(userId)) && (filter.shard === undefined || ownsUser(filter.shard, userId));
}

export function keepsTime(filter: RecordFilter, eventTimeMs: number): boolean {
  return (filter.sinceMs === undefined || eventTimeMs >= filter.sinceMs) && (filter.untilMs === undefined || eventTimeMs < filter.untilMs);
}

/** One input of a backfill: a file or a Kafka topic-partition range. */
export interface SourceReader {
  /** What reports and the checkpoint call it: a path, or `topic[partition]`. */
  readonly label: string;
  /** Cursor before the first record. */
  readonly start: SourceCursor;
  /** Progress units in all (bytes, rows or offsets) and how many a cursor has covered. */
  readonly units: number;
  unitsDone(cursor: SourceCursor): number;
  /** Where a record is, for reports: `file:line`, `file:row N`, `topic[partition]@offset`. */
  locate(at: number): string;
  /** Records from `from` on, in source order, in batches; every record carries the cursor after it. */
  read(from: SourceCursor): AsyncIterable<SourceRecord[]>;
  close?(): Promise<void>;
}
