// Events as JSONL: one event per line, `type` + the protobuf fields in the generated camelCase
// names (record-schema.ts). The reader streams line by line and reports a bad line by its number.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { EventRecord } from './event-record.js';
import { type EventRecordSchema, eventRecords } from './record-schema.js';

/** A JSONL line that is not a valid event. */
export class JsonlLineError extends TasteError {
  /** 1-based line number in the input. */
  readonly line: number;
  /** What is wrong with the line, without the line number. */
  readonly reason: string;
  /** Where the line came from (a path or a description), if known. */
  readonly source: string | undefined;

  constructor(line: number, reason: string, source?: string) {
    super(ErrorCodes.EVENT_INVALID, `${source ?? 'input'}:${line}: ${reason}`);
    this.name = 'JsonlLineError';
    this.line = line;
    this.reason = reason;
    this.source = source;
  }
}

/** One event as one JSON line (no newline). Field order is the .proto's, so output is byte-stable. */
export function eventToJson(record: EventRecord): string {
  return eventRecords.toJson(record);
}

/**
 * Parses one JSONL line into an event; throws a TasteError (EVENT_INVALID) whose message is the
 * reason. The rules are record-schema.ts's: proto3 defaults, int64 as a number or decimal string,
 * enums by name, unknown fields refused.
 */
export function parseEventLine(text: string, schema: EventRecordSchema = eventRecords): EventRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TasteError(ErrorCodes.EVENT_INVALID, `invalid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return schema.parse(value);
}

export interface JsonlRecord {
  /** 1-based line number. */
  readonly line: number;
  readonly event: EventRecord;
}

export interface ReadEventsOptions {
  /**
   * Called for each bad line, which is then skipped. Without it, the first bad line throws a
   * `JsonlLineError` (with `.line` and `.reason`).
   */
  onBadLine?: (error: JsonlLineError) => void;
  /** Name used in error messages. @default the path, or 'input' for a stream */
  sourceName?: string;
}

/** Streams events from a JSONL file (or stream), line by line. Blank lines are skipped. */
export async function* readEventsJsonl(source: string | Readable, options: ReadEventsOptions = {}): AsyncGenerator<JsonlRecord, void, undefined> {
  const input = typeof source === 'string' ? createReadStream(source, { encoding: 'utf8' }) : source;
  const sourceName = options.sourceName ?? (typeof source === 'string' ? source : undefined);
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.trim() === '') continue;
      let event: EventRecord;
      try {
        event = parseEventLine(text);
      } catch (error) {
        const bad = new JsonlLineError(line, error instanceof Error ? error.message : String(error), sourceName);
        if (options.onBadLine === undefined) throw bad;
        options.onBadLine(bad);
        continue;
      }
      yield { line, event };
    }
  } finally {
    lines.close();
    if (typeof source === 'string') input.destroy();
  }
}
