import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { asyncBufferFromFile, type Compressors, type FileMetaData, parquetMetadataAsync, parquetScan } from 'hyparquet';
import { compressors as jsCompressors } from 'hyparquet-compressors';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { EventRecord } from '../events/event-record.js';
import type { EventFeaturizer } from '../events/featurizer.js';
import { eventRecords } from '../events/record-schema.js';
import type { FileCoordinates } from './file-identity.js';
import type { KafkaCoordinate, KafkaCoordinateReader } from './kafka-coordinates.js';
import { keepsTime, keepsUser, type RecordFilter, type SourceCursor, type SourceReader, type SourceRecord } from './source.js';

/**
 * The columns read: the JSONL fields (docs/backfill.md), from the .proto (events/record-schema.ts).
 * Others are ignored; missing ones take their defaults.
 */
const PLAY_COLUMNS = eventRecords.fields('play');
const SEARCH_COLUMNS = eventRecords.fields('search');
const ALL_COLUMNS = ['type', ...new Set([...PLAY_COLUMNS, ...SEARCH_COLUMNS])];
const BATCH_ROWS = 4096;

// ZSTD, LZ4 (Hadoop framing) and LZ4_RAW from hyparquet-compressors (pure JS; Node 20 has no zstd).
// The rest as before: hyparquet's built-in Snappy (its wasm one was no faster on a DuckDB file, 200k
// rows), node:zlib's gzip (on a par with its JS one) and brotli (~1.5x faster than its JS one).
const compressors: Compressors = {
  ZSTD: jsCompressors.ZSTD!,
  LZ4: jsCompressors.LZ4!,
  LZ4_RAW: jsCompressors.LZ4_RAW!,
  GZIP: (input) => gunzipSync(input),
  BROTLI: (input) => brotliDecompressSync(input),
};
/** The codecs read (hyparquet names them as parquet-format's CompressionCodec does). */
export const SUPPORTED_CODECS: readonly string[] = ['UNCOMPRESSED', 'SNAPPY', ...Object.keys(compressors)];

export interface ParquetSourceOptions {
  path: string;
  label: string;
  coordinates: FileCoordinates;
  /** Each row carries its Kafka coordinates, read by this; its events get them instead of the file's (kafka-coordinates.ts). */
  kafka?: KafkaCoordinateReader | undefined;
  featurizer: EventFeaturizer;
  filter: RecordFilter;
  nowMs: number;
}

/**
 * A Parquet file with the JSONL fields as columns (docs/backfill.md); offset = 1-based row number.
 * Read one row group at a time, column by column: memory grows with the largest row group.
 */
export class ParquetSource implements SourceReader {
  readonly label: string;
  readonly start: SourceCursor = { at: 0, next: 0 };
  readonly #options: ParquetSourceOptions;
  readonly #metadata: FileMetaData;
  readonly #file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  readonly #columns: string[];
  readonly #coordinateColumns: string[];

  private constructor(options: ParquetSourceOptions, file: Awaited<ReturnType<typeof asyncBufferFromFile>>, metadata: FileMetaData) {
    this.#options = options;
    this.label = options.label;
    this.#file = file;
    this.#metadata = metadata;
    const schemaColumns = new Set(metadata.schema.slice(1).map((element) => element.name));
    const { kafka } = options;
    // With Kafka coordinates the topic gives each row's type; a sink's file of one topic has no "type" column.
    if (!schemaColumns.has('type') && !kafka) {
      throw new TasteError(ErrorCodes.EVENT_INVALID, `${options.label}: no "type" column ("play" or "search" per row); see docs/backfill.md`);
    }
    if (!schemaColumns.has('userId') || !schemaColumns.has('eventTimeMs')) {
      throw new TasteError(ErrorCodes.EVENT_INVALID, `${options.label}: the columns "userId" and "eventTimeMs" are required; see docs/backfill.md`);
    }
    const coordinateColumns = kafka ? [kafka.fields.topic, kafka.fields.partition, kafka.fields.offset] : [];
    const absent = coordinateColumns.find((column) => !schemaColumns.has(column));
    if (absent !== undefined) {
      throw new TasteError(
        ErrorCodes.EVENT_INVALID,
        `${options.label}: no "${absent}" column, which --kafka-coordinates fields reads each row's Kafka coordinates from (--kafka-topic-field, --kafka-partition-field, --kafka-offset-field)`,
      );
    }
    this.#coordinateColumns = coordinateColumns;
    this.#columns = [...ALL_COLUMNS.filter((column) => schemaColumns.has(column)), ...coordinateColumns];
    // The columns read are checked when the file is opened, before anything is written: a codec met mid-file would stop the run half-way.
    for (const group of metadata.row_groups) {
      for (const chunk of group.columns) {
        const codec = chunk.meta_data?.codec;
        const column = chunk.meta_data?.path_in_schema.join('.') ?? '';
        if (chunk.meta_data !== undefined && this.#columns.includes(column) && (codec === undefined || !SUPPORTED_CODECS.includes(codec))) {
          throw new TasteError(
            ErrorCodes.EVENT_INVALID,
            `${options.label}: column "${column}" is compressed with ${codec ?? 'a codec unknown to parquet-format'}, which is not supported (${SUPPORTED_CODECS.join(', ')} are): rewrite the file with one of them`,
          );
        }
      }
    }
  }

  static async open(options: ParquetSourceOptions): Promise<ParquetSource> {
    let file;
    let metadata;
    try {
      file = await asyncBufferFromFile(options.path);
      metadata = await parquetMetadataAsync(file);
    } catch (cause) {
      throw new TasteError(ErrorCodes.EVENT_INVALID, `${options.label}: not a readable Parquet file: ${(cause as Error).message}`, { cause });
    }
    return new ParquetSource(options, file, metadata);
  }

  get units(): number {
    return Number(this.#metadata.num_rows);
  }

  unitsDone(cursor: SourceCursor): number {
    return cursor.next;
  }

  locate(at: number): string {
    return `${this.label}:row ${at}`;
  }

  async *read(from: SourceCursor): AsyncGenerator<SourceRecord[]> {
    const { coordinates, featurizer, filter, nowMs } = this.#options;
    for await (const { columns, rowStart, rowEnd } of this.#rowGroups(this.#columns, from.next)) {
      let records: SourceRecord[] = [];
      for (let index = 0; index < rowEnd - rowStart; index++) {
        const row = rowStart + index + 1; // 1-based row number: what reports show, and the offset without Kafka coordinates
        records.push({ at: row, next: row, outcome: this.#outcome(columns, index, row, coordinates, featurizer, filter, nowMs) });
        if (records.length >= BATCH_ROWS) {
          yield records;
          records = [];
        }
      }
      if (records.length > 0) yield records;
    }
  }

  /** The Kafka coordinates of every row that has valid ones, in file order (the offset-order check before a run); reads only their columns. */
  async *scanCoordinates(): AsyncGenerator<{ at: number; coordinate: KafkaCoordinate }[]> {
    const { kafka } = this.#options;
    if (!kafka) return;
    const columnsRead = [...this.#coordinateColumns, ...(this.#columns.includes('type') ? ['type'] : [])];
    for await (const { columns, rowStart, rowEnd } of this.#rowGroups(columnsRead, 0)) {
      const found: { at: number; coordinate: KafkaCoordinate }[] = [];
      for (let index = 0; index < rowEnd - rowStart; index++) {
        const result = kafka.read((name) => plain(columns.get(name)?.[index]), columns.get('type')?.[index]);
        if (result.ok) found.push({ at: rowStart + index + 1, coordinate: result.coordinate });
      }
      yield found;
    }
  }

  /** The given columns of each row group from row `from` on. */
  async *#rowGroups(columnsRead: readonly string[], from: number): AsyncGenerator<{ columns: Map<string, ArrayLike<unknown>>; rowStart: number; rowEnd: number }> {
    const scan = await parquetScan({ file: this.#file, metadata: this.#metadata, columns: [...columnsRead], compressors });
    for (const range of scan.ranges) {
      if (range.rowEnd <= from) continue;
      const rowStart = Math.max(range.rowStart, from);
      const columns = new Map<string, ArrayLike<unknown>>();
      for (const column of columnsRead) columns.set(column, await scan.readColumn({ column, rowStart, rowEnd: range.rowEnd }));
      yield { columns, rowStart, rowEnd: range.rowEnd };
    }
  }

  #outcome(
    columns: Map<string, ArrayLike<unknown>>,
    index: number,
    row: number,
    coordinates: FileCoordinates,
    featurizer: EventFeaturizer,
    filter: RecordFilter,
    nowMs: number,
  ): SourceRecord['outcome'] {
    let type = columns.get('type')?.[index];
    let [topic, partition, offset] = [coordinates.topic, coordinates.partition, row];
    const { kafka } = this.#options;
    if (kafka) {
      const result = kafka.read((name) => plain(columns.get(name)?.[index]), type);
      if (!result.ok) return { type: 'invalid', reason: result.reason, detail: result.detail };
      ({ type } = result);
      ({ topic, partition, offset } = result.coordinate);
    }
    const fields: readonly string[] = type === 'play' ? PLAY_COLUMNS : type === 'search' ? SEARCH_COLUMNS : [];
    const record: Record<string, unknown> = { type };
    for (const field of fields) {
      const value = plain(columns.get(field)?.[index]);
      if (value !== undefined) record[field] = value;
    }
    let parsed: EventRecord;
    try {
      // The JSONL lines' schema, so both formats accept and refuse exactly the same events.
      parsed = eventRecords.parse(record);
    } catch (error) {
      return { type: 'invalid', reason: 'UNPARSABLE', detail: (error as Error).message };
    }
    const { userId, eventTimeMs } = parsed.event;
    if (!keepsUser(filter, userId) || !keepsTime(filter, eventTimeMs)) return { type: 'filtered' };
    const result = featurizer.featurizeRecord(parsed, topic, partition, offset, nowMs);
    return result.ok ? { type: 'event', event: result.event } : { type: 'invalid', reason: result.rejection.reason, detail: result.rejection.detail };
  }
}

/** Parquet values → JSON values: int64 (bigint) → number, timestamps (Date) → ms, null → absent. */
function plain(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.getTime();
  return value;
}
