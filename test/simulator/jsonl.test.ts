import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { JsonlLineError } from '../../simulator/errors.js';
import { eventToJson, parseEventLine, readEventsJsonl, writeCatalogueTsv, writeEventsJsonl, writeLatentTastes } from '../../simulator/jsonl.js';
import type { SimEvent } from '../../simulator/sim-event.js';
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

async function readAll(source: string | Readable): Promise<SimEvent[]> {
  const out: SimEvent[] = [];
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

test('the line format: "type" plus the generated camelCase fields', (t) => {
  const play = events.find((e) => e.kind === 'play')!;
  const search = events.find((e) => e.kind === 'search')!;
  t.deepEqual(JSON.parse(eventToJson(play)), { type: 'play', ...play.event });
  t.deepEqual(JSON.parse(eventToJson(search)), { type: 'search', ...search.event });
  t.deepEqual(Object.keys(JSON.parse(eventToJson(play))), ['type', 'userId', 'itemUri', 'itemKind', 'eventTimeMs', 'msPlayed', 'itemDurationMs', 'context', 'endReason']);
});

test('writes to an async iterable and a stream, with progress', async (t) => {
  async function* slowly(): AsyncGenerator<SimEvent> {
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

test('a bad line is reported with its line number and reason', async (t) => {
  const path = join(dir, 'bad.jsonl');
  const lines = [eventToJson(events[0]!), eventToJson(events[1]!), '{"type":"play","userId":"u1"', eventToJson(events[2]!)];
  await writeFile(path, lines.join('\n') + '\n');
  const error = await t.throwsAsync(readAll(path), { instanceOf: JsonlLineError });
  t.is(error.line, 3);
  t.regex(error.reason, /invalid JSON/);
  t.true(error.message.startsWith(`${path}:3: `));

  const bad: JsonlLineError[] = [];
  const good: number[] = [];
  for await (const record of readEventsJsonl(path, { onBadLine: (e) => bad.push(e) })) good.push(record.line);
  t.deepEqual(good, [1, 2, 4]);
  t.deepEqual(bad.map((e) => e.line), [3]);
});

test('line numbers count blank and CRLF lines as in an editor', async (t) => {
  const text = `${eventToJson(events[0]!)}\r\n\r\n${eventToJson(events[1]!)}\r\n{"type":"view"}\r\n`;
  const bad: JsonlLineError[] = [];
  const lines: number[] = [];
  for await (const record of readEventsJsonl(Readable.from([text]), { sourceName: 'inline', onBadLine: (e) => bad.push(e) })) lines.push(record.line);
  t.deepEqual(lines, [1, 3]);
  t.is(bad[0]!.line, 4);
  t.is(bad[0]!.message, 'inline:4: "type" must be "play" or "search" (got "view")');
});

test('validation reasons say what to fix', (t) => {
  const reason = (text: string): string => t.throws(() => parseEventLine(text))!.message;
  t.regex(reason('[1]'), /expected a JSON object, got an array/);
  t.regex(reason('{"type":"play","userId":"u","itemUri":"x","eventTimeMs":1,"eventTime":2}'), /unknown field "eventTime" in a play event/);
  t.regex(reason('{"type":"play","userId":"","itemUri":"x","eventTimeMs":1}'), /"userId" must be a non-empty string/);
  t.regex(reason('{"type":"play","userId":"u","itemUri":"x","eventTimeMs":-5}'), /"eventTimeMs" must be a non-negative integer/);
  t.regex(reason('{"type":"play","userId":"u","itemUri":"x","eventTimeMs":1,"context":"RADIO"}'), /"context" must be one of PLAY_CONTEXT_UNSPECIFIED, /);
  t.regex(reason('{"type":"play","userId":"u","itemUri":"x","eventTimeMs":1,"msPlayed":1.5}'), /"msPlayed" must be an integer/);
});

test('missing fields take proto3 defaults; int64 may be a string', (t) => {
  t.deepEqual(parseEventLine('{"type":"search","userId":"u","eventTimeMs":"1767571200000"}'), {
    kind: 'search',
    event: { userId: 'u', query: '', eventTimeMs: 1767571200000, clickedItemUri: '', clickedItemKind: 'ITEM_KIND_UNSPECIFIED' },
  });
  const play = parseEventLine('{"type":"play","userId":"u","itemUri":"taste:track:1","eventTimeMs":5}');
  t.like(play.event, { msPlayed: 0, itemKind: 'ITEM_KIND_UNSPECIFIED', endReason: 'END_REASON_UNSPECIFIED' });
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
