import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { EventRecord } from '../../events/event-record.js';
import { readEventsJsonl } from '../../events/jsonl.js';
import { writeCatalogueTsv, writeEventsJsonl, writeLatentTastes } from '../../simulator/jsonl.js';
import { createWorld } from '../../simulator/world.js';

const world = createWorld({ users: 100, seed: 5, durationMs: 3 * 86_400_000 });
const events = [...world.events()];
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'taste-simulator-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(source: string | Readable): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for await (const record of readEventsJsonl(source)) out.push(record.event);
  return out;
}

test('events round-trip through a JSONL file', async (t) => {
  const path = join(dir, 'events.jsonl');
  t.is(await writeEventsJsonl(events, path), events.length);
  const text = await readFile(path, 'utf8');
  t.is(text.split('\n').length, events.length + 1);
  t.deepEqual(await readAll(path), events);
});

test('writes to an async iterable and a stream, with progress', async (t) => {
  async function* slowly(): AsyncGenerator<EventRecord> {
    yield* events.slice(0, 25);
  }
  const chunks: string[] = [];
  const sink = new (await import('node:stream')).Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const progress: number[] = [];
  t.is(await writeEventsJsonl(slowly(), sink, { progressEvery: 10, onProgress: (n) => progress.push(n) }), 25);
  t.deepEqual(progress, [10, 20]);
  t.deepEqual(await readAll(Readable.from([chunks.join('')])), events.slice(0, 25));
});

test('catalogue TSV and latent tastes JSONL', async (t) => {
  const tsv = join(dir, 'catalogue.tsv');
  t.is(await writeCatalogueTsv(world.catalogue.items, tsv), world.catalogue.items.length);
  const rows = (await readFile(tsv, 'utf8')).trimEnd().split('\n').map((line) => line.split('\t'));
  t.is(rows.length, world.catalogue.items.length);
  const item = world.catalogue.items[0]!;
  t.deepEqual(rows[0], [item.uri, item.kind, item.genre, item.artist, item.title, String(item.durationMs)]);
  t.true(rows.every((r) => r.length === 6));

  const tastes = join(dir, 'tastes.jsonl');
  t.is(await writeLatentTastes(world.users, tastes), world.users.length);
  const parsed = (await readFile(tastes, 'utf8')).trimEnd().split('\n').map((line) => JSON.parse(line) as { userId: string; genres: Record<string, number>; vector: number[] });
  t.is(parsed.length, world.users.length);
  const user = world.users[0]!;
  t.is(parsed[0]!.userId, user.userId);
  t.deepEqual(Object.keys(parsed[0]!.genres), user.tastes.map((x) => x.genre));
  t.true(Math.abs(Object.values(parsed[0]!.genres).reduce((a, b) => a + b, 0) - 1) < 1e-5);
  t.is(parsed[0]!.vector.length, world.catalogue.latentDim);
});

test('a write to a path that cannot be created fails with the fs error', async (t) => {
  await t.throwsAsync(writeEventsJsonl(events.slice(0, 3), join(dir, 'missing', 'dir', 'x.jsonl')), { message: /ENOENT/ });
});
