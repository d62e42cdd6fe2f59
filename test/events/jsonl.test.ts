import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import type { EventRecord } from '../../events/event-record.js';
import { eventToJson, JsonlLineError, parseEventLine, readEventsJsonl } from '../../events/jsonl.js';

const play: EventRecord = {
  kind: 'play',
  event: {
    userId: 'u1',
    itemUri: 'taste:track:7',
    itemKind: 'ITEM_KIND_TRACK',
    eventTimeMs: 1_767_571_200_000,
    msPlayed: 181_000,
    itemDurationMs: 200_000,
    context: 'PLAY_CONTEXT_RADIO',
    endReason: 'END_REASON_COMPLETED',
  },
};
const search: EventRecord = {
  kind: 'search',
  event: { userId: 'u2', query: 'Daft "Punk"\n', eventTimeMs: 1_767_571_260_000, clickedItemUri: '', clickedItemKind: 'ITEM_KIND_UNSPECIFIED' },
};
const events: EventRecord[] = [play, search, { kind: 'play', event: { ...play.event, userId: 'u3', context: 'PLAY_CONTEXT_UNSPECIFIED' } }];

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'taste-events-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(source: string | Readable): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for await (const record of readEventsJsonl(source)) out.push(record.event);
  return out;
}

test('the line format: "type" plus the generated camelCase fields, in .proto order', (t) => {
  t.deepEqual(JSON.parse(eventToJson(play)), { type: 'play', ...play.event });
  t.deepEqual(JSON.parse(eventToJson(search)), { type: 'search', ...search.event });
  t.deepEqual(Object.keys(JSON.parse(eventToJson(play))), ['type', 'userId', 'itemUri', 'itemKind', 'eventTimeMs', 'msPlayed', 'itemDurationMs', 'context', 'endReason']);
  t.is(
    eventToJson(search),
    '{"type":"search","userId":"u2","query":"Daft \\"Punk\\"\\n","eventTimeMs":1767571260000,"clickedItemUri":"","clickedItemKind":"ITEM_KIND_UNSPECIFIED"}',
  );
  t.deepEqual(parseEventLine(eventToJson(play)), play);
  t.deepEqual(parseEventLine(eventToJson(search)), search);
});

test('a bad line is reported with its line number and reason', async (t) => {
  const path = join(dir, 'bad.jsonl');
  const lines = [eventToJson(events[0]!), eventToJson(events[1]!), '{"type":"play","userId":"u1"', eventToJson(events[2]!)];
  await writeFile(path, lines.join('\n') + '\n');
  const error = await t.throwsAsync(readAll(path), { instanceOf: JsonlLineError });
  t.is(error.line, 3);
  t.regex(error.reason, /invalid JSON/);
  t.true(error.message.startsWith(`${path}:3: `));
  t.true(error instanceof TasteError && error.code === ErrorCodes.EVENT_INVALID);

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
  const reason = (text: string): string => t.throws(() => parseEventLine(text), { instanceOf: TasteError })!.message;
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
  const parsed = parseEventLine('{"type":"play","userId":"u","itemUri":"taste:track:1","eventTimeMs":5}');
  t.like(parsed.event, { msPlayed: 0, itemKind: 'ITEM_KIND_UNSPECIFIED', endReason: 'END_REASON_UNSPECIFIED' });
});
