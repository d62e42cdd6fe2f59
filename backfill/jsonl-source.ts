import type { EventRecord } from '../events/event-record.js';
import type { EventFeaturizer } from '../events/featurizer.js';
import { parseEventLine } from '../events/jsonl.js';
import { eventRecords } from '../events/record-schema.js';
import { type FileBytes, readFileBytes } from './file-bytes.js';
import type { FileCoordinates } from './file-identity.js';
import type { KafkaCoordinate, KafkaCoordinateReader } from './kafka-coordinates.js';
import { ownsUser } from './shard.js';
import { keepsTime, keepsUser, type RecordFilter, type SourceCursor, type SourceReader, type SourceRecord } from './source.js';

/** Longest line accepted; a longer one is reported and skipped without being held in memory. */
export const MAX_LINE_BYTES = 1 << 20;
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

const USER_ID_KEY = '"userId"';
/** The key after `{` or `,`, and a value of user-id characters only (nothing escaped), ended by `,` or `}`. */
const USER_ID_FIELD = /[{,]\s*"userId"\s*:\s*"([A-Za-z0-9._:@+=-]{1,128})"\s*[,}]/;

/**
 * A JSONL line's user id without parsing the line, where the text leaves no doubt: `"userId"`
 * occurs once (JSON.parse keeps the last of repeated keys), as a key — the quote before it follows
 * `{`, `,` or a space, so it is not escaped, and an unescaped quote followed by a letter opens a
 * string — with a plain valid id as its value. Undefined otherwise, and the line is parsed in full.
 * A shard skips the other shards' lines with it, at a few percent of a parse each. On a line that is
 * not valid JSON it may find an id the parse would refuse: that line is then reported by that id's
 * shard only, and counted as filtered by the others.
 */
export function peekUserId(text: string): string | undefined {
  const first = text.indexOf(USER_ID_KEY);
  if (first < 0 || text.includes(USER_ID_KEY, first + 1)) return undefined;
  return USER_ID_FIELD.exec(text)?.[1];
}

export interface JsonlLine {
  /** 1-based line number. */
  line: number;
  /** Byte offset just after the line's newline: where reading resumes. */
  next: number;
  /** The text without its line break; undefined when the line is longer than `MAX_LINE_BYTES`. */
  text: string | undefined;
}

/**
 * The lines of a file from a byte offset on (the line count so far given), in batches per read.
 * Unlike `readline`, it knows each line's byte offset, so a resumed backfill seeks instead of
 * re-parsing the file (a gzip file's offsets count decompressed bytes: file-bytes.ts). `\n` and
 * `\r\n` both end a line; a last line without a newline counts.
 */
export async function* readJsonlLines(file: FileBytes, from: SourceCursor, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<JsonlLine[]> {
  let line = from.at;
  let offset = from.next; // byte offset of `pending`'s first byte
  let pending: Buffer = Buffer.alloc(0);
  let overlong = false; // inside a line longer than the limit: skip to its end
  for await (const chunk of readFileBytes(file, from.next)) {
    const buffer = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    const lines: JsonlLine[] = [];
    let start = 0;
    for (let end = buffer.indexOf(NEWLINE, start); end >= 0; end = buffer.indexOf(NEWLINE, start)) {
      line++;
      const next = offset + end + 1;
      if (overlong || end - start > maxLineBytes) {
        lines.push({ line, next, text: undefined });
        overlong = false;
      } else {
        const stop = end > start && buffer[end - 1] === CARRIAGE_RETURN ? end - 1 : end;
        lines.push({ line, next, text: buffer.toString('utf8', start, stop) });
      }
      start = end + 1;
    }
    if (buffer.length - start > maxLineBytes) {
      overlong = true; // keep nothing of it; the line is reported when its newline comes
      pending = Buffer.alloc(0);
      offset += buffer.length;
    } else {
      pending = buffer.subarray(start);
      offset += start;
    }
    if (lines.length > 0) yield lines;
  }
  if (pending.length > 0 || overlong) {
    line++;
    const end = pending.length;
    const stop = end > 0 && pending[end - 1] === CARRIAGE_RETURN ? end - 1 : end;
    yield [{ line, next: offset + end, text: overlong ? undefined : pending.toString('utf8', 0, stop) }];
  }
}

export interface JsonlSourceOptions {
  path: string;
  label: string;
  /** Read through gunzip (a `.gz` file). */
  gzip: boolean;
  /** The text's size: the file's, or decompressed for a gzip file (progress units). */
  bytes: number;
  coordinates: FileCoordinates;
  /** Each line carries its Kafka coordinates, read by this; its events get them instead of the file's (kafka-coordinates.ts). */
  kafka?: KafkaCoordinateReader | undefined;
  featurizer: EventFeaturizer;
  filter: RecordFilter;
  /** Validation time (future-skew check). */
  nowMs: number;
}

/** A parsed line: the event and the coordinates it is applied under. */
type ParsedLine = { ok: true; record: EventRecord; topic: string; partition: number; offset: number } | { ok: false; reason: string; detail: string };

/** A JSONL file of events, plain or gzip (docs/backfill.md): offset = line number. */
export class JsonlSource implements SourceReader {
  readonly label: string;
  readonly start: SourceCursor = { at: 0, next: 0 };
  readonly units: number;
  readonly #options: JsonlSourceOptions;

  constructor(options: JsonlSourceOptions) {
    this.#options = options;
    this.label = options.label;
    this.units = options.bytes;
  }

  unitsDone(cursor: SourceCursor): number {
    return cursor.next;
  }

  locate(at: number): string {
    return `${this.label}:${at}`;
  }

  async *read(from: SourceCursor): AsyncGenerator<SourceRecord[]> {
    const { path, label, gzip, coordinates, featurizer, filter, nowMs } = this.#options;
    for await (const lines of readJsonlLines({ path, label, gzip }, from)) {
      const records: SourceRecord[] = [];
      for (const { line, next, text } of lines) {
        if (text === undefined) {
          records.push({ at: line, next, outcome: { type: 'invalid', reason: 'LINE_TOO_LONG', detail: `line is longer than ${MAX_LINE_BYTES} bytes` } });
          continue;
        }
        if (text.trim() === '') {
          records.push({ at: line, next, outcome: { type: 'filtered' } });
          continue;
        }
        const peeked = filter.shard && peekUserId(text);
        if (filter.shard && peeked && !ownsUser(filter.shard, peeked)) {
          records.push({ at: line, next, outcome: { type: 'filtered' } });
          continue;
        }
        const parsed = this.#parse(text, line, coordinates);
        if (!parsed.ok) {
          records.push({ at: line, next, outcome: { type: 'invalid', reason: parsed.reason, detail: parsed.detail } });
          continue;
        }
        const { record } = parsed;
        const { userId, eventTimeMs } = record.event;
        if (!keepsUser(filter, userId) || !keepsTime(filter, eventTimeMs)) {
          records.push({ at: line, next, outcome: { type: 'filtered' } });
          continue;
        }
        const result = featurizer.featurizeRecord(record, parsed.topic, parsed.partition, parsed.offset, nowMs);
        records.push({
          at: line,
          next,
          outcome: result.ok ? { type: 'event', event: result.event } : { type: 'invalid', reason: result.rejection.reason, detail: result.rejection.detail },
        });
      }
      yield records;
    }
  }

  /** The Kafka coordinates of every line that has valid ones, in file order (the offset-order check before a run). */
  async *scanCoordinates(): AsyncGenerator<{ at: number; coordinate: KafkaCoordinate }[]> {
    const { path, label, gzip, kafka } = this.#options;
    if (!kafka) return;
    for await (const lines of readJsonlLines({ path, label, gzip }, this.start)) {
      const found: { at: number; coordinate: KafkaCoordinate }[] = [];
      for (const { line, text } of lines) {
        if (text === undefined || text.trim() === '') continue;
        const value = jsonObject(text);
        // Lines without valid coordinates are bad records, reported by the run; they take no place in the order.
        const result = value && kafka.read((name) => value[name], value.type);
        if (result && result.ok) found.push({ at: line, coordinate: result.coordinate });
      }
      yield found;
    }
  }

  #parse(text: string, line: number, coordinates: FileCoordinates): ParsedLine {
    const { kafka } = this.#options;
    try {
      if (!kafka) return { ok: true, record: parseEventLine(text), topic: coordinates.topic, partition: coordinates.partition, offset: line };
      const value = jsonObject(text);
      if (value === undefined) return { ok: true, record: parseEventLine(text), topic: '', partition: 0, offset: 0 }; // throws the parse's reason
      const result = kafka.read((name) => value[name], value.type);
      if (!result.ok) return result;
      const { topic, partition, offset } = kafka.fields;
      const { [topic]: _topic, [partition]: _partition, [offset]: _offset, ...event } = value;
      const { coordinate } = result;
      return { ok: true, record: eventRecords.parse({ ...event, type: result.type }), topic: coordinate.topic, partition: coordinate.partition, offset: coordinate.offset };
    } catch (error) {
      return { ok: false, reason: 'UNPARSABLE', detail: (error as Error).message };
    }
  }
}

/** A line's JSON object, or undefined when it is not one (parseEventLine then says why). */
function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
