import type { SourcedEvent } from '../events/window-event.js';
import type { SourceCursor, SourceReader, SourceRecord } from './source.js';

/** Where a backfill stands: the source being read and the cursor in it (undefined: its start). */
export interface Position {
  source: number;
  cursor: SourceCursor | undefined;
}

export interface BadRecord {
  where: string;
  reason: string;
  detail: string;
}

/** One step of a backfill: the next `chunkSize` records (fewer at the very end), across sources. */
export interface Chunk {
  events: SourcedEvent[];
  records: number;
  invalid: number;
  filtered: number;
  /** Position after the chunk's last record. */
  end: Position;
  /** No record is left after this chunk. */
  exhausted: boolean;
  /** With `stopAtBad`: the bad record the chunk stopped at (it and the chunk are not applied). */
  bad?: BadRecord;
}

/** Where a backfill's steps come from: ChunkReader (records in order), or GroupedInput (records sorted by user). */
export interface ChunkStream {
  next(): Promise<Chunk | undefined>;
  close(): Promise<void>;
}

export interface ChunkReaderOptions {
  sources: readonly SourceReader[];
  from: Position;
  chunkSize: number;
  /** Called for every invalid record as it is read. */
  onInvalid?: (bad: BadRecord) => void;
  /** End the chunk at the first invalid record (--fail-fast). */
  stopAtBad?: boolean;
  /**
   * End a chunk where its source ends, so no chunk spans two sources. A chunk's records then
   * depend only on its own source, which a run reading a subset of the sources (a Kafka shard's
   * partitions) cuts into the same chunks as a run reading them all. @default false
   */
  splitAtSources?: boolean;
}

/** #nextRecord's answer when a source ended and the chunk must end with it. */
const SOURCE_END = Symbol('source end');

/**
 * Cuts the records of all sources, read in order, into chunks of exactly `chunkSize` records
 * (counting events, invalid and filtered records alike; with `splitAtSources`, fewer where a
 * source ends). Chunk boundaries depend only on the position read from, so a run resumed at a
 * chunk boundary forms the same chunks as an uninterrupted one — which keeps state versions, and
 * thus the written bytes, identical.
 */
export class ChunkReader implements ChunkStream {
  readonly #options: ChunkReaderOptions;
  #source: number;
  #cursor: SourceCursor | undefined;
  #iterator: AsyncIterator<SourceRecord[]> | undefined;
  #pending: SourceRecord[] = [];
  #pendingAt = 0;
  #exhausted = false;

  constructor(options: ChunkReaderOptions) {
    this.#options = options;
    this.#source = options.from.source;
    this.#cursor = options.from.cursor;
  }

  get position(): Position {
    return { source: this.#source, cursor: this.#cursor };
  }

  async next(): Promise<Chunk | undefined> {
    const { chunkSize, sources, onInvalid, stopAtBad, splitAtSources = false } = this.#options;
    const chunk: Chunk = { events: [], records: 0, invalid: 0, filtered: 0, end: this.position, exhausted: false };
    while (chunk.records < chunkSize) {
      const record = await this.#nextRecord(splitAtSources && chunk.records > 0);
      if (record === SOURCE_END) {
        chunk.exhausted = this.#source >= sources.length;
        break;
      }
      if (!record) {
        chunk.exhausted = true;
        break;
      }
      const { outcome } = record;
      if (outcome.type === 'invalid') {
        const bad = { where: sources[this.#source]!.locate(record.at), reason: outcome.reason, detail: outcome.detail };
        onInvalid?.(bad);
        if (stopAtBad) {
          chunk.bad = bad;
          return chunk;
        }
        chunk.invalid++;
      } else if (outcome.type === 'filtered') {
        chunk.filtered++;
      } else {
        chunk.events.push(outcome.event);
      }
      chunk.records++;
      this.#cursor = { at: record.at, next: record.next };
    }
    chunk.end = this.position;
    if (chunk.records === 0 && chunk.exhausted) return undefined;
    return chunk;
  }

  /** The next record of any source; with `stopAtSourceEnd`, SOURCE_END instead of crossing into the next source. */
  async #nextRecord(stopAtSourceEnd: boolean): Promise<SourceRecord | typeof SOURCE_END | undefined> {
    const { sources } = this.#options;
    for (;;) {
      if (this.#pendingAt < this.#pending.length) return this.#pending[this.#pendingAt++];
      if (this.#exhausted || this.#source >= sources.length) {
        this.#exhausted = true;
        return undefined;
      }
      if (!this.#iterator) {
        const source = sources[this.#source]!;
        this.#iterator = source.read(this.#cursor ?? source.start)[Symbol.asyncIterator]();
      }
      const step = await this.#iterator.next();
      if (step.done) {
        this.#iterator = undefined;
        this.#source++;
        this.#cursor = undefined;
        if (stopAtSourceEnd) return SOURCE_END;
        continue;
      }
      this.#pending = step.value;
      this.#pendingAt = 0;
    }
  }

  async close(): Promise<void> {
    await this.#iterator?.return?.();
    this.#iterator = undefined;
  }
}
