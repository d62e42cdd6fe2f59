import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { parseEventLine } from '../../events/jsonl.js';
import { eventRecords, eventRecordSchema } from '../../events/record-schema.js';
import { playType, searchType, toObjectOptions } from '../../proto/event-codec.js';
import { EVENTS_PROTO, PROTO_ROOT } from '../../proto/paths.js';

const EVENTS_PROTO_TEXT = readFileSync(join(PROTO_ROOT, EVENTS_PROTO), 'utf8');

/** events.proto as text with `edit` applied, parsed the way proto/event-codec.ts loads it. */
function typesOf(edit: (proto: string) => string): { play: protobuf.Type; search: protobuf.Type } {
  const { root } = protobuf.parse(edit(EVENTS_PROTO_TEXT), { keepCase: false });
  return { play: root.lookupType('taste.v1.PlayEvent'), search: root.lookupType('taste.v1.SearchEvent') };
}

const play = (fields: Record<string, unknown>) => ({ type: 'play', userId: 'u', itemUri: 'taste:track:1', eventTimeMs: 5, ...fields });
const reason = (t: ExecutionContext, value: unknown): string => t.throws(() => eventRecords.parse(value), { instanceOf: TasteError })!.message;

// What protobufjs' fromObject alone would make of each record, and what the file parser says instead.
const lenient: [string, Record<string, unknown>, RegExp][] = [
  ['a number for a string (fromObject: "5")', play({ userId: 5 }), /^"userId" must be a non-empty string \(got 5\)$/],
  ['a string for a uint32 (fromObject: 12)', play({ msPlayed: '12' }), /^"msPlayed" must be an integer between 0 and 4294967295 \(got "12"\)$/],
  ['2^32 for a uint32 (fromObject: 0)', play({ msPlayed: 2 ** 32 }), /^"msPlayed" must be an integer between 0 and 4294967295/],
  ['a negative uint32 (fromObject: 4294967295)', play({ itemDurationMs: -1 }), /^"itemDurationMs" must be an integer between 0 and 4294967295/],
  ['an unknown enum name (fromObject: the zero value)', play({ itemKind: 'TRACK' }), /^"itemKind" must be one of ITEM_KIND_UNSPECIFIED, ITEM_KIND_TRACK, /],
  ['an enum number (fromObject: its name)', play({ context: 3 }), /^"context" must be one of PLAY_CONTEXT_UNSPECIFIED, /],
  ['an out-of-range enum number (fromObject: keeps 99)', play({ endReason: 99 }), /^"endReason" must be one of END_REASON_UNSPECIFIED, /],
  ['digits then letters for an int64 (fromObject: parseInt, 12)', play({ eventTimeMs: '12a' }), /^"eventTimeMs" must be a non-negative integer of ms since the epoch \(got "12a"\)$/],
  ['a fraction for an int64 (fromObject: 1)', play({ eventTimeMs: 1.5 }), /^"eventTimeMs" must be a non-negative integer/],
  ['an unsafe int64 (fromObject: rounded)', play({ eventTimeMs: 2 ** 60 }), /^"eventTimeMs" must be a non-negative integer/],
  ['a snake_case name (fromObject: ignored)', play({ item_kind: 'ITEM_KIND_TRACK' }), /^unknown field "item_kind" in a play event \(expected: type, userId, itemUri, /],
  ['no item for a play (fromObject: "")', { type: 'play', userId: 'u', eventTimeMs: 5 }, /^"itemUri" must be a non-empty string \(got nothing\)$/],
  ['no event time (fromObject: 0)', { type: 'search', userId: 'u', query: 'q' }, /^"eventTimeMs" must be a non-negative integer of ms since the epoch \(got nothing\)$/],
  ['a number for a search query (fromObject: "7")', { type: 'search', userId: 'u', eventTimeMs: 5, query: 7 }, /^"query" must be a string \(got 7\)$/],
];

for (const [what, record, expected] of lenient) {
  test(`refused where fromObject would coerce: ${what}`, (t) => {
    const fields = Object.fromEntries(Object.entries(record).filter(([key]) => key !== 'type'));
    t.notThrows(() => (record['type'] === 'play' ? playType : searchType).fromObject(fields), 'protobufjs itself accepts it');
    t.regex(reason(t, record), expected);
  });
}

test('an accepted record becomes what protobufjs makes of it (fromObject, then toObject as Kafka bytes decode)', (t) => {
  const accepted: Record<string, unknown>[] = [
    play({}),
    play({ itemKind: 'ITEM_KIND_PODCAST_EPISODE', msPlayed: 4_294_967_295, itemDurationMs: 0, context: 'PLAY_CONTEXT_LIBRARY', endReason: 'END_REASON_ERROR' }),
    play({ eventTimeMs: '1767571200000' }),
    play({ eventTimeMs: Number.MAX_SAFE_INTEGER, userId: 'ü@x' }),
    { type: 'search', userId: 'u', eventTimeMs: 7 },
    { type: 'search', userId: 'u', eventTimeMs: '0', query: 'q', clickedItemUri: 'taste:track:9', clickedItemKind: 'ITEM_KIND_TRACK' },
  ];
  for (const record of accepted) {
    const type = record['type'] === 'play' ? playType : searchType;
    const parsed = eventRecords.parse(record);
    t.is(parsed.kind as unknown, record['type']);
    t.deepEqual(parsed.event, type.toObject(type.fromObject(record), toObjectOptions), JSON.stringify(record));
    t.deepEqual(Object.keys(parsed.event), type.fieldsArray.map((field) => field.name), 'every field, in .proto order');
  }
});

test('a refused record is an EVENT_INVALID TasteError', (t) => {
  const error = t.throws(() => eventRecords.parse(play({ msPlayed: '1' })), { instanceOf: TasteError });
  t.is(error!.code, ErrorCodes.EVENT_INVALID);
  t.false(error!.canRetry);
});

test('the record fields are the .proto message fields, in declaration order', (t) => {
  t.deepEqual(eventRecords.fields('play'), ['userId', 'itemUri', 'itemKind', 'eventTimeMs', 'msPlayed', 'itemDurationMs', 'context', 'endReason']);
  t.deepEqual(eventRecords.fields('search'), ['userId', 'query', 'eventTimeMs', 'clickedItemUri', 'clickedItemKind']);
});

test('a field added to the .proto is read and written with no code change', (t) => {
  const extended = eventRecordSchema(
    typesOf((proto) =>
      proto
        .replace('message PlayEvent {', 'enum Device {\n  DEVICE_UNSPECIFIED = 0;\n  DEVICE_PHONE = 1;\n}\n\nmessage PlayEvent {')
        .replace('EndReason end_reason = 8;', 'EndReason end_reason = 8;\n  bool offline_mode = 9;\n  Device device = 10;\n  int64 downloaded_at_ms = 11;\n  repeated string tags = 12;'),
    ),
  );
  const line = '{"type":"play","userId":"u","itemUri":"taste:track:1","eventTimeMs":5,"offlineMode":true,"device":"DEVICE_PHONE","downloadedAtMs":"4","tags":["a","b"]}';
  const parsed = parseEventLine(line, extended);
  t.like(parsed.event as object, { userId: 'u', offlineMode: true, device: 'DEVICE_PHONE', downloadedAtMs: 4, tags: ['a', 'b'] });
  t.like(parseEventLine('{"type":"play","userId":"u","itemUri":"x","eventTimeMs":5}', extended).event as object, {
    offlineMode: false,
    device: 'DEVICE_UNSPECIFIED',
    downloadedAtMs: 0,
    tags: [],
  });
  t.deepEqual(extended.fields('play').slice(-4), ['offlineMode', 'device', 'downloadedAtMs', 'tags']);
  t.is(
    extended.toJson(parsed),
    '{"type":"play","userId":"u","itemUri":"taste:track:1","itemKind":"ITEM_KIND_UNSPECIFIED","eventTimeMs":5,"msPlayed":0,"itemDurationMs":0,' +
      '"context":"PLAY_CONTEXT_UNSPECIFIED","endReason":"END_REASON_UNSPECIFIED","offlineMode":true,"device":"DEVICE_PHONE","downloadedAtMs":4,"tags":["a","b"]}',
  );
  // The new fields are checked like the old ones...
  t.throws(() => extended.parse(play({ offlineMode: 'yes' })), { message: '"offlineMode" must be true or false (got "yes")' });
  t.throws(() => extended.parse(play({ device: 'DEVICE_TABLET' })), { message: '"device" must be one of DEVICE_UNSPECIFIED, DEVICE_PHONE (got "DEVICE_TABLET")' });
  t.throws(() => extended.parse(play({ tags: ['a', 1] })), { message: '"tags[1]" must be a string (got 1)' });
  // ...and the schema of today's .proto does not know them: the .proto decides, not the parser.
  t.throws(() => parseEventLine(line), { message: /^unknown field "offlineMode" in a play event/ });
});

test('a nested message field is checked field by field', (t) => {
  const nested = eventRecordSchema(
    typesOf((proto) =>
      proto
        .replace('message PlayEvent {', 'message Position {\n  uint32 track_number = 1;\n  string disc = 2;\n}\n\nmessage PlayEvent {')
        .replace('EndReason end_reason = 8;', 'EndReason end_reason = 8;\n  Position position = 9;'),
    ),
  );
  t.like(nested.parse(play({ position: { trackNumber: 3 } })).event as object, { position: { trackNumber: 3, disc: '' } });
  t.throws(() => nested.parse(play({ position: { trackNumber: -3 } })), { message: /^"position.trackNumber" must be an integer between 0 and 4294967295/ });
  t.throws(() => nested.parse(play({ position: { side: 'A' } })), { message: /^unknown field "position.side"/ });
  t.throws(() => nested.parse(play({ position: 'A1' })), { message: /^"position" must be an object/ });
  for (const record of [nested.parse(play({})), nested.parse(play({ position: { disc: 'B' } }))]) {
    t.deepEqual(nested.parse(JSON.parse(nested.toJson(record))), record, 'an unset message field is left out of the line');
  }
});

test('a .proto field the record format cannot hold is refused when the schema is built', (t) => {
  const withMap = typesOf((proto) => proto.replace('EndReason end_reason = 8;', 'EndReason end_reason = 8;\n  map<string, string> labels = 9;'));
  t.throws(() => eventRecordSchema(withMap), { instanceOf: TasteError, message: /labels is a map field/ });
  const withType = typesOf((proto) => proto.replace('EndReason end_reason = 8;', 'EndReason end_reason = 8;\n  string type = 9;'));
  t.throws(() => eventRecordSchema(withType), { instanceOf: TasteError, message: /has a field "type"/ });
});
