// Files the simulator writes: events as JSONL (the format of events/jsonl.ts, which reads them),
// the catalogue as TSV and the true tastes as JSONL. Writers await 'drain' (bounded memory for
// any number of events).
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { EventRecord } from '../events/event-record.js';
import { eventToJson } from '../events/jsonl.js';
import type { CatalogueItem } from './catalogue.js';
import type { SimUser } from './users.js';

const CHUNK_CHARS = 1 << 16;

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
  events: Iterable<EventRecord> | AsyncIterable<EventRecord>,
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
