import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBAppender, type DuckDBConnection, type DuckDBDataChunk, DuckDBInstance, type DuckDBResult } from '@duckdb/node-api';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { EventKind, SourcedEvent, Stream, WindowEvent } from '../events/window-event.js';
import { type BadRecord, type Chunk, ChunkReader, type ChunkStream, type Position } from './chunks.js';
import type { SourceCursor, SourceReader } from './source.js';

/** How the input is sorted by user: DuckDB's settings (docs/backfill.md, "One pass per user"). */
export interface GroupingOptions {
  /** DuckDB's `memory_limit` (e.g. `'1GB'`); beyond it the table and the sort spill to `tempDirectory`. @default '1GB' */
  memoryLimit?: string;
  /** Where DuckDB keeps the table and spills the sort, in a new folder removed at the end. @default the OS temporary directory */
  tempDirectory?: string;
  /** DuckDB's threads for the sort. @default DuckDB's (the cores) */
  threads?: number;
}

export interface GroupedInputOptions {
  /** The files, opened, in reading order: read once, whole, before anything is applied. */
  sources: readonly SourceReader[];
  /** Events per step, at most (a user with more is applied in pieces of this size, in order). */
  chunkSize: number;
  stopAtBad: boolean;
  onInvalid?: (bad: BadRecord) => void;
  grouping?: GroupingOptions;
  /** Says how long reading and sorting took. */
  logger?: Logger;
}

/** Rows appended per read of the sources (ChunkReader's chunk while loading). */
const LOAD_CHUNK = 8192;
/** Rows appended between flushes into the table. */
const FLUSH_ROWS = 65_536;

/**
 * The backfill's input grouped by user: every record of every source is read, validated and
 * featurized by the sources themselves (so events keep the identity, `topic:partition:offset`, and
 * bad records are reported exactly as a streaming run reports them), stored in DuckDB, and read
 * back sorted by user, then source (in reading order), then offset. Steps are cut at user
 * boundaries: each user's whole history is one updater apply (one state read, one inference, one
 * write), unless it holds more than `chunkSize` events: then it is applied in pieces of
 * `chunkSize`, in offset order per source, one piece per step.
 *
 * The sorted order is total (ties broken by the order read), so a row count is a position: the
 * checkpoint's cursor is the number of sorted rows applied, and a resumed run reads everything
 * again and skips that many.
 */
export class GroupedInput {
  /** What the backfill reports and checkpoints against: one "source", the sorted rows. */
  readonly source: SourceReader;
  readonly #options: GroupedInputOptions;
  readonly #units: number;
  #db: { instance: DuckDBInstance; connection: DuckDBConnection; folder: string } | undefined;
  #rows = 0;

  constructor(options: GroupedInputOptions) {
    this.#options = options;
    this.#units = options.sources.reduce((sum, source) => sum + source.units, 0);
    const files = options.sources.length;
    this.source = {
      label: `${files} file${files === 1 ? '' : 's'} grouped by user`,
      start: { at: 0, next: 0 },
      units: this.#units,
      // Progress in the sources' units (bytes, rows), prorated by the sorted rows applied.
      unitsDone: (cursor: SourceCursor) => (this.#rows === 0 ? 0 : Math.round((this.#units * cursor.next) / this.#rows)),
      locate: (at: number) => `row ${at} of the input sorted by user`,
      read: () => {
        throw new TasteError(ErrorCodes.INTERNAL, 'the grouped input is read through GroupedInput.chunks');
      },
    };
  }

  /** The steps from `from` on (a cursor of sorted rows; undefined: the start). */
  chunks(from: Position): ChunkStream {
    return new GroupedChunks(this, from.cursor?.next ?? 0, this.#options);
  }

  /** Reads every source into DuckDB; the bad record it stopped at with `stopAtBad`. */
  async load(): Promise<{ records: number; invalid: number; filtered: number; bad?: BadRecord }> {
    const connection = await this.#connect();
    await connection.run('CREATE TABLE events (u VARCHAR NOT NULL, s UINTEGER NOT NULL, o DOUBLE NOT NULL, n DOUBLE NOT NULL, t DOUBLE NOT NULL, k UTINYINT NOT NULL, i UINTEGER NOT NULL, q BLOB)');
    const appender = await connection.createAppender('events');
    const { sources, stopAtBad, onInvalid } = this.#options;
    const reader = new ChunkReader({ sources, from: { source: 0, cursor: undefined }, chunkSize: LOAD_CHUNK, stopAtBad, ...(onInvalid ? { onInvalid } : {}) });
    const counts = { records: 0, invalid: 0, filtered: 0 };
    const sourceIndex = new SourceIndex();
    let flushed = 0;
    try {
      for (;;) {
        const chunk = await reader.next();
        if (!chunk) break;
        if (chunk.bad) return { ...counts, bad: chunk.bad };
        for (const sourced of chunk.events) appendEvent(appender, sourced, sourceIndex.of(sourced), this.#rows++);
        // Appended rows are the appender's until flushed, and cannot be evicted under the memory limit till then.
        if (this.#rows - flushed >= FLUSH_ROWS) {
          appender.flushSync();
          flushed = this.#rows;
        }
        counts.records += chunk.records;
        counts.invalid += chunk.invalid;
        counts.filtered += chunk.filtered;
        if (chunk.exhausted) break;
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
      await reader.close();
    }
    this.sourceKeys = sourceIndex.keys;
    return counts;
  }

  /** Topic and partition of each source index stored in `s`. */
  sourceKeys: readonly { topic: string; partition: number }[] = [];

  get rows(): number {
    return this.#rows;
  }

  /** The sorted rows from `skip` on. */
  async sorted(skip: number): Promise<DuckDBResult> {
    const connection = this.#db?.connection;
    if (!connection) throw new TasteError(ErrorCodes.INTERNAL, 'GroupedInput.sorted before load');
    return connection.stream(`SELECT u, s, o, t, k, i, q FROM events ORDER BY u, s, o, n OFFSET ${Math.floor(skip)}`);
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    if (!db) return;
    db.connection.closeSync();
    db.instance.closeSync();
    await rm(db.folder, { recursive: true, force: true });
  }

  async #connect(): Promise<DuckDBConnection> {
    const grouping = this.#options.grouping ?? {};
    // A folder of this run's own, removed at the end, whatever the directory given.
    const parent = grouping.tempDirectory ?? tmpdir();
    const folder = await mkdtemp(join(parent, 'taste-backfill-group-')).catch((cause: NodeJS.ErrnoException) => {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `--group-temp-dir ${parent}: cannot make the grouping's folder there (${cause.code ?? cause.message})`, { cause });
    });
    const settings: Record<string, string> = {
      memory_limit: grouping.memoryLimit ?? '1GB',
      temp_directory: join(folder, 'spill'),
      // The ORDER BY is total: nothing to gain from keeping the insertion order.
      preserve_insertion_order: 'false',
      // Appended rows stay in memory until a checkpoint writes them to the file: checkpoint often.
      checkpoint_threshold: '16MB',
      ...(grouping.threads ? { threads: String(grouping.threads) } : {}),
    };
    let instance: DuckDBInstance | undefined;
    try {
      // A database file, not ':memory:': DuckDB evicts a file's blocks under its memory limit, while an
      // in-memory table that outgrows the limit fails the append.
      instance = await DuckDBInstance.create(join(folder, 'events.duckdb'), settings);
      const connection = await instance.connect();
      this.#db = { instance, connection, folder };
      return connection;
    } catch (cause) {
      instance?.closeSync();
      await rm(folder, { recursive: true, force: true });
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `cannot start DuckDB to group the input by user (${(cause as Error).message})`, { cause });
    }
  }
}

/** Small numbers for the sources' `topic:partition` keys, in the order first read (the reading order). */
class SourceIndex {
  readonly keys: { topic: string; partition: number }[] = [];
  readonly #index = new Map<string, Map<number, number>>();

  of(sourced: SourcedEvent): number {
    let partitions = this.#index.get(sourced.topic);
    if (!partitions) this.#index.set(sourced.topic, (partitions = new Map()));
    let index = partitions.get(sourced.event.partition);
    if (index === undefined) {
      index = this.keys.length;
      partitions.set(sourced.event.partition, index);
      this.keys.push({ topic: sourced.topic, partition: sourced.event.partition });
    }
    return index;
  }
}

function appendEvent(appender: DuckDBAppender, sourced: SourcedEvent, source: number, sequence: number): void {
  const { event } = sourced;
  appender.appendVarchar(sourced.userId);
  appender.appendUInteger(source);
  appender.appendDouble(event.offset);
  appender.appendDouble(sequence);
  appender.appendDouble(event.eventTimeMs);
  appender.appendUTinyInt((event.stream << 4) | event.kind);
  appender.appendUInteger(event.itemId);
  if (event.queryTokens.length === 0) appender.appendNull();
  else appender.appendBlob(new Uint8Array(Uint32Array.from(event.queryTokens).buffer));
  appender.endRow();
}

/** One user's next events, at most `chunkSize` of them. */
type Group = SourcedEvent[];

/** The steps of a grouped run: users whole, in sorted order, up to `chunkSize` events a step. */
class GroupedChunks implements ChunkStream {
  readonly #input: GroupedInput;
  readonly #options: GroupedInputOptions;
  /** Sorted rows before this run's first (the checkpoint's cursor). */
  readonly #skip: number;
  #started: Promise<{ bad?: BadRecord }> | undefined;
  /** The load's counts, reported once, with the backfill's first step (not again when resumed past it). */
  #loadCounts: { records: number; invalid: number; filtered: number } | undefined;
  #result: DuckDBResult | undefined;
  #rows: RowBatch | undefined;
  #held: Group | undefined;
  #done = false;
  #position: number;

  constructor(input: GroupedInput, skip: number, options: GroupedInputOptions) {
    this.#input = input;
    this.#skip = skip;
    this.#position = skip;
    this.#options = options;
  }

  async next(): Promise<Chunk | undefined> {
    const started = await (this.#started ??= this.#start());
    const chunk: Chunk = { events: [], records: 0, invalid: 0, filtered: 0, end: this.#end(), exhausted: false };
    if (started.bad) return { ...chunk, bad: started.bad };
    const load = this.#loadCounts;
    if (load) {
      this.#loadCounts = undefined;
      chunk.invalid = load.invalid;
      chunk.filtered = load.filtered;
      chunk.records = load.invalid + load.filtered;
    }
    const { chunkSize } = this.#options;
    for (;;) {
      const group = this.#held ?? (await this.#nextGroup());
      this.#held = undefined;
      if (!group) {
        chunk.exhausted = true;
        break;
      }
      if (chunk.events.length > 0 && chunk.events.length + group.length > chunkSize) {
        this.#held = group;
        break;
      }
      for (const event of group) chunk.events.push(event);
      this.#position += group.length;
    }
    chunk.records += chunk.events.length;
    chunk.end = this.#end();
    if (chunk.records === 0 && chunk.exhausted) return undefined;
    return chunk;
  }

  async close(): Promise<void> {
    this.#result = undefined;
    this.#rows = undefined;
  }

  #end(): Position {
    return { source: 0, cursor: { at: this.#position, next: this.#position } };
  }

  async #start(): Promise<{ bad?: BadRecord }> {
    this.#options.logger?.info('reading the whole input, to group it by user (nothing is written before it is read)', { skip: this.#skip });
    const started = performance.now();
    const loaded = await this.#input.load();
    if (loaded.bad) return { bad: loaded.bad };
    const readMs = performance.now() - started;
    // Counted by the first step of the whole backfill; a run resumed past it has them in its checkpoint.
    if (this.#skip === 0) this.#loadCounts = loaded;
    this.#result = await this.#input.sorted(this.#skip);
    await this.#currentRows();
    this.#options.logger?.info('input grouped by user', {
      rows: this.#input.rows,
      skipped: this.#skip,
      readMs: Math.round(readMs),
      sortMs: Math.round(performance.now() - started - readMs),
    });
    return {};
  }

  /** The next user's events in sorted order, at most chunkSize (the rest of that user comes next). */
  async #nextGroup(): Promise<Group | undefined> {
    const { chunkSize } = this.#options;
    let group: Group | undefined;
    let userId: string | undefined;
    while (!group || group.length < chunkSize) {
      const rows = await this.#currentRows();
      if (!rows) break;
      const user = rows.users[rows.at]!;
      if (userId === undefined) userId = user;
      else if (user !== userId) break;
      (group ??= []).push(rows.event(rows.at));
      rows.at++;
    }
    return group;
  }

  /** The batch of sorted rows being read, with at least one row left; undefined at the end. */
  async #currentRows(): Promise<RowBatch | undefined> {
    while (!this.#done && (!this.#rows || this.#rows.at >= this.#rows.users.length)) {
      const chunk = await this.#result!.fetchChunk();
      if (!chunk || chunk.rowCount === 0) {
        this.#done = true;
        this.#rows = undefined;
        break;
      }
      this.#rows = new RowBatch(chunk, this.#input.sourceKeys);
    }
    return this.#done ? undefined : this.#rows;
  }
}

/** A play's tokens: one shared, frozen array instead of one per event (nothing writes an event's tokens). */
const NO_TOKENS: readonly number[] = Object.freeze([]);

/** One DuckDB chunk of sorted rows, its columns read out once. */
class RowBatch {
  readonly users: string[];
  at = 0;
  readonly #sources: readonly { topic: string; partition: number }[];
  readonly #s: number[];
  readonly #o: number[];
  readonly #t: number[];
  readonly #k: number[];
  readonly #i: number[];
  readonly #q: (Uint8Array | null)[];

  constructor(chunk: DuckDBDataChunk, sources: readonly { topic: string; partition: number }[]) {
    this.#sources = sources;
    const column = <T>(index: number, read: (vector: ReturnType<DuckDBDataChunk['getColumnVector']>, row: number) => T): T[] => {
      const vector = chunk.getColumnVector(index);
      const values = new Array<T>(chunk.rowCount);
      for (let row = 0; row < values.length; row++) values[row] = read(vector, row);
      return values;
    };
    const item = (vector: ReturnType<DuckDBDataChunk['getColumnVector']>, row: number) => vector.getItem(row) as number;
    this.users = column(0, (vector, row) => vector.getItem(row) as string);
    this.#s = column(1, item);
    this.#o = column(2, item);
    this.#t = column(3, item);
    this.#k = column(4, item);
    this.#i = column(5, item);
    this.#q = column(6, (vector, row) => (vector as unknown as { getItemBytes(row: number): Uint8Array | null }).getItemBytes(row));
  }

  event(row: number): SourcedEvent {
    const { topic, partition } = this.#sources[this.#s[row]!]!;
    const k = this.#k[row]!;
    const q = this.#q[row];
    const event: WindowEvent = {
      eventTimeMs: this.#t[row]!,
      stream: (k >> 4) as Stream,
      partition,
      offset: this.#o[row]!,
      itemId: this.#i[row]!,
      kind: (k & 0xf) as EventKind,
      queryTokens: q ? Array.from(new Uint32Array(q.buffer.slice(q.byteOffset, q.byteOffset + q.byteLength))) : NO_TOKENS,
    };
    return { userId: this.users[row]!, topic, event };
  }
}
