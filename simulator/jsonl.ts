// Files the simulator writes: events as JSONL (one event per line, `type` + the protobuf fields
// in the generated camelCase names), the catalogue as TSV and the true tastes as JSONL. Writers
// await 'drain' (bounded memory for any number of events); the reader streams line by line and
// reports a bad line by its number.
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { EndReason } from '../proto/generated/taste/v1/EndReason.js';
import { ItemKind } from '../proto/generated/taste/v1/ItemKind.js';
import { PlayContext } from '../proto/generated/taste/v1/PlayContext.js';
import type { CatalogueItem } from './catalogue.js';
import { JsonlLineError } from './errors.js';
import type { SimEvent } from './sim-event.js';
import type { SimUser } from './users.js';

const CHUNK_CHARS = 1 << 16;

/** One event as one JSON line (no newline). Field order is fixed, so output is byte-stable. */
export function eventToJson(simulated: SimEvent): string {
  if (simulated.kind === 'play') {
    const e = simulated.event;
    return (
      `{"type":"play","userId":${JSON.stringify(e.userId)},"itemUri":${JSON.stringify(e.itemUri)},` +
      `"itemKind":"${e.itemKind}","eventTimeMs":${e.eventTimeMs},"msPlayed":${e.msPlayed},` +
      `"itemDurationMs":${e.itemDurationMs},"context":"${e.context}","endReason":"${e.endReason}"}`
    );
  }
  const e = simulated.event;
  return (
    `{"type":"search","userId":${JSON.stringify(e.userId)},"query":${JSON.stringify(e.query)},` +
    `"eventTimeMs":${e.eventTimeMs},"clickedItemUri":${JSON.stringify(e.clickedItemUri)},` +
    `"clickedItemKind":"${e.clickedItemKind}"}`
  );
}

export interface WriteEventsOptions {
  /** Called every `progressEvery` events with the count so far (the CLI prints progress). */
  onProgress?: (events: number) => void;
  /** @default 1_000_000 */
  progressEvery?: number;
}

/**
 * Writes events as JSONL to a file path (created/truncated, closed at the end) or to a stream
 * (left open). Returns the number of events written.
 */
export async function writeEventsJsonl(
  events: Iterable<SimEvent> | AsyncIterable<SimEvent>,
  destination: string | Writable,
  options: WriteEventsOptions = {},
): Promise<number> {
  const { onProgress, progressEvery = 1_000_000 } = options;
  let count = 0;
  await writeLines(destination, async (write) => {
    // A sync iterable (the simulator) is pulled without a microtask per event: only a full
    // destination makes it wait.
    if (Symbol.asyncIterator in events) {
      for await (const simulated of events) {
        await write(eventToJson(simulated));
        if (++count % progressEvery === 0) onProgress?.(count);
      }
    } else {
      for (const simulated of events) {
        const full = write(eventToJson(simulated));
        if (full !== undefined) await full;
        if (++count % progressEvery === 0) onProgress?.(count);
      }
    }
  });
  return count;
}

/** The catalogue as header-less TSV: `uri kind genre artist title durationMs`. */
export async function writeCatalogueTsv(items: Iterable<CatalogueItem>, destination: string | Writable): Promise<number> {
  let count = 0;
  await writeLines(destination, async (write) => {
    for (const item of items) {
      count++;
      const full = write([item.uri, item.kind, tsvField(item.genre), tsvField(item.artist), tsvField(item.title), String(item.durationMs)].join('\t'));
      if (full !== undefined) await full;
    }
  });
  return count;
}

/** The users' true tastes as JSONL: `{"userId", "genres": {name: weight}, "vector": [...]}`. */
export async function writeLatentTastes(users: Iterable<SimUser>, destination: string | Writable): Promise<number> {
  let count = 0;
  await writeLines(destination, async (write) => {
    for (const user of users) {
      count++;
      const genres = Object.fromEntries(user.tastes.map((t) => [t.genre, round6(t.weight)]));
      const full = write(JSON.stringify({ userId: user.userId, genres, vector: Array.from(user.vector, round6) }));
      if (full !== undefined) await full;
    }
  });
  return count;
}

export interface JsonlRecord {
  /** 1-based line number. */
  readonly line: number;
  readonly event: SimEvent;
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
      let event: SimEvent;
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

const playFields = ['type', 'userId', 'itemUri', 'itemKind', 'eventTimeMs', 'msPlayed', 'itemDurationMs', 'context', 'endReason'] as const;
const searchFields = ['type', 'userId', 'query', 'eventTimeMs', 'clickedItemUri', 'clickedItemKind'] as const;
const itemKinds: readonly string[] = Object.values(ItemKind);
const playContexts: readonly string[] = Object.values(PlayContext);
const endReasons: readonly string[] = Object.values(EndReason);

/**
 * Parses one JSONL line into an event; throws an Error whose message is the reason. Like proto3
 * JSON, missing fields take their defaults (except the ones an event is meaningless without),
 * and int64 `eventTimeMs` may be a decimal string; unknown fields are refused, to catch typos.
 */
export function parseEventLine(text: string): SimEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`invalid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
  }
  const record = value as Record<string, unknown>;
  const type = record['type'];
  if (type !== 'play' && type !== 'search') {
    throw new Error(`"type" must be "play" or "search" (got ${type === undefined ? 'nothing' : JSON.stringify(type)})`);
  }
  const allowed: readonly string[] = type === 'play' ? playFields : searchFields;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw new Error(`unknown field "${key}" in a ${type} event (expected: ${allowed.join(', ')})`);
  }
  const userId = requiredString(record, 'userId');
  const eventTimeMs = timestamp(record['eventTimeMs']);
  if (type === 'play') {
    return {
      kind: 'play',
      event: {
        userId,
        itemUri: requiredString(record, 'itemUri'),
        itemKind: enumValue(record, 'itemKind', itemKinds) as SimPlay['itemKind'],
        eventTimeMs,
        msPlayed: uint32(record, 'msPlayed'),
        itemDurationMs: uint32(record, 'itemDurationMs'),
        context: enumValue(record, 'context', playContexts) as SimPlay['context'],
        endReason: enumValue(record, 'endReason', endReasons) as SimPlay['endReason'],
      },
    };
  }
  return {
    kind: 'search',
    event: {
      userId,
      query: optionalString(record, 'query'),
      eventTimeMs,
      clickedItemUri: optionalString(record, 'clickedItemUri'),
      clickedItemKind: enumValue(record, 'clickedItemKind', itemKinds) as SimSearch['clickedItemKind'],
    },
  };
}

type SimPlay = Extract<SimEvent, { kind: 'play' }>['event'];
type SimSearch = Extract<SimEvent, { kind: 'search' }>['event'];

function requiredString(record: Record<string, unknown>, field: string): string {
  const value = record[field];
  if (typeof value !== 'string' || value === '') {
    throw new Error(`"${field}" must be a non-empty string (got ${value === undefined ? 'nothing' : JSON.stringify(value)})`);
  }
  return value;
}

function optionalString(record: Record<string, unknown>, field: string): string {
  const value = record[field];
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new Error(`"${field}" must be a string (got ${JSON.stringify(value)})`);
  return value;
}

function timestamp(value: unknown): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`"eventTimeMs" must be a non-negative integer of ms since the epoch (got ${value === undefined ? 'nothing' : JSON.stringify(value)})`);
  }
  return n;
}

function uint32(record: Record<string, unknown>, field: string): number {
  const value = record[field];
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`"${field}" must be an integer between 0 and 4294967295 (got ${JSON.stringify(value)})`);
  }
  return value;
}

function enumValue(record: Record<string, unknown>, field: string, names: readonly string[]): string {
  const value = record[field];
  if (value === undefined) return names[0]!; // proto3: the zero value, *_UNSPECIFIED
  if (typeof value !== 'string' || !names.includes(value)) {
    throw new Error(`"${field}" must be one of ${names.join(', ')} (got ${JSON.stringify(value)})`);
  }
  return value;
}

/**
 * Runs `produce` with a `write(line)` that batches lines into chunks; when the destination is
 * full it returns a promise to await (its 'drain'), otherwise undefined. A path is opened here and
 * closed at the end; a stream is left open.
 */
async function writeLines(
  destination: string | Writable,
  produce: (write: (line: string) => Promise<void> | undefined) => Promise<void>,
): Promise<void> {
  const stream = typeof destination === 'string' ? createWriteStream(destination, { encoding: 'utf8' }) : destination;
  let failure: unknown;
  const onError = (error: unknown): void => {
    failure ??= error;
  };
  stream.on('error', onError);
  let chunk = '';
  const flush = (): Promise<void> | undefined => {
    if (failure !== undefined) throw failure;
    const ok = stream.write(chunk);
    chunk = '';
    return ok ? undefined : once(stream, 'drain').then(() => undefined);
  };
  try {
    await produce((line) => {
      chunk += line + '\n';
      return chunk.length >= CHUNK_CHARS ? flush() : undefined;
    });
    if (chunk.length > 0) await flush();
    if (typeof destination === 'string') {
      stream.end();
      await finished(stream);
    }
    if (failure !== undefined) throw failure;
  } catch (error) {
    if (typeof destination === 'string') stream.destroy();
    throw error;
  } finally {
    stream.off('error', onError);
  }
}

function tsvField(text: string): string {
  return text.replace(/[\t\r\n]/g, ' ');
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
