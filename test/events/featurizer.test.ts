import test from 'ava';
import type { EventRecord } from '../../events/event-record.js';
import { EventFeaturizer, type ItemVocabulary, type RawMessage } from '../../events/featurizer.js';
import { defaultValidationLimits, RejectReasons } from '../../events/validation.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { encodePlayEvent, encodeSearchEvent } from '../../proto/event-codec.js';
import { play, search } from '../helpers/pipeline.js';

/** A vocabulary by hand: three known tracks, ids 2..4; anything else is 1 (unknown), no item 0. */
const vocabulary: ItemVocabulary = {
  idOf: (uri) => (uri === '' ? 0 : (({ 'taste:track:a': 2, 'taste:track:b': 3, 'taste:track:c': 4 } as Record<string, number>)[uri] ?? 1)),
};
const params = { vocabulary, queryTokens: 3, queryBuckets: 4096 };
const featurizer = new EventFeaturizer(params);
const now = Date.UTC(2026, 0, 5);

function kafkaMessage(record: EventRecord, key: string | null = record.event.userId): RawMessage {
  const value = record.kind === 'play' ? encodePlayEvent(record.event) : encodeSearchEvent(record.event);
  return { topic: 'topic-x', partition: 3, offset: '42', key: key === null ? null : Buffer.from(key), value };
}

const cases: EventRecord[] = [
  { kind: 'play', event: play('u1', 'taste:track:a', now - 1000) },
  { kind: 'play', event: play('u1', 'nope:unknown', now - 1000, { msPlayed: 1000, endReason: 'END_REASON_UNSPECIFIED' }) },
  { kind: 'play', event: play('u1', 'taste:track:b', now - 1000, { msPlayed: 40_000, itemDurationMs: 0, endReason: 'END_REASON_USER_STOPPED' }) },
  { kind: 'search', event: search('u2', 'Daft Punk — Around the World', now - 500, 'taste:track:c') },
  { kind: 'search', event: search('u2', '', now - 500) },
  { kind: 'play', event: play('bad user!', 'taste:track:a', now) },
  { kind: 'play', event: play('u3', 'taste:track:a', Date.UTC(2001, 0, 1)) },
];

test('a file record and the same event as Kafka bytes are validated and featurized alike', (t) => {
  for (const record of cases) {
    const fromFile = featurizer.featurizeRecord(record, 'topic-x', 3, 42, now);
    const fromKafka = featurizer.featurize(record.kind, kafkaMessage(record), now);
    t.deepEqual(fromFile, fromKafka, JSON.stringify(record));
  }
});

test('what a featurized play and search hold', (t) => {
  t.deepEqual(featurizer.featurizeRecord(cases[0]!, 'plays', 3, 42, now), {
    ok: true,
    event: { userId: 'u1', topic: 'plays', event: { stream: Streams.PLAY, partition: 3, offset: 42, eventTimeMs: now - 1000, itemId: 2, kind: EventKinds.COMPLETED, queryTokens: [] } },
  });
  const unknown = featurizer.featurizeRecord(cases[1]!, 'plays', 0, 1, now);
  t.like(unknown, { ok: true, event: { event: { itemId: 1, kind: EventKinds.SKIPPED } } });
  const searched = featurizer.featurizeRecord(cases[3]!, 'searches', 0, 7, now);
  t.like(searched, { ok: true, event: { userId: 'u2', event: { stream: Streams.SEARCH, itemId: 4, kind: EventKinds.SEARCH } } });
  t.is(searched.ok && searched.event.event.queryTokens.length, 3, 'at most queryTokens tokens');
});

test('refusals name the reason', (t) => {
  const reasonOf = (result: ReturnType<EventFeaturizer['featurize']>) => (result.ok ? undefined : result.rejection.reason);
  t.is(reasonOf(featurizer.featurizeRecord(cases[4]!, 't', 0, 1, now)), RejectReasons.EMPTY_SEARCH);
  t.is(reasonOf(featurizer.featurizeRecord(cases[5]!, 't', 0, 1, now)), RejectReasons.INVALID_USER_ID);
  t.is(reasonOf(featurizer.featurizeRecord(cases[6]!, 't', 0, 1, now)), RejectReasons.EVENT_TIME_OUT_OF_RANGE);
  const lenient = new EventFeaturizer({ ...params, limits: { ...defaultValidationLimits, minEventTimeMs: 0 } });
  t.true(lenient.featurizeRecord(cases[6]!, 't', 0, 1, now).ok, '--min-event-time lowers the floor');

  // Only Kafka records have a key, a size and bytes to decode.
  t.is(reasonOf(featurizer.featurize('play', kafkaMessage(cases[0]!, 'someone-else'), now)), RejectReasons.KEY_MISMATCH);
  t.is(reasonOf(featurizer.featurize('play', { ...kafkaMessage(cases[0]!), value: null }, now)), RejectReasons.UNDECODABLE);
  t.is(reasonOf(featurizer.featurize('play', { ...kafkaMessage(cases[0]!), value: Buffer.from([0xff, 0xff]) }, now)), RejectReasons.UNDECODABLE);
  const small = new EventFeaturizer({ ...params, maxMessageBytes: 8 });
  t.is(reasonOf(small.featurize('play', kafkaMessage(cases[0]!), now)), RejectReasons.PAYLOAD_TOO_LARGE);
});

test("with shadow models, each event is also featurized in each shadow's own space, from the one decode", (t) => {
  // A shadow trained on another catalogue: other ids for the same tracks, and a shorter query.
  const shadowVocabulary: ItemVocabulary = { idOf: (uri) => (uri === '' ? 0 : (({ 'taste:track:a': 9, 'taste:track:c': 7 } as Record<string, number>)[uri] ?? 1)) };
  const withShadow = new EventFeaturizer({ ...params, shadows: [{ vocabulary: shadowVocabulary, queryTokens: 1, queryBuckets: 16 }] });
  const played = withShadow.featurize('play', kafkaMessage(cases[0]!), now);
  t.like(played, { ok: true, event: { event: { itemId: 2 }, shadowEvents: [{ itemId: 9, offset: 42, partition: 3, eventTimeMs: now - 1000, kind: EventKinds.COMPLETED }] } });
  const searched = withShadow.featurize('search', kafkaMessage(cases[3]!), now);
  t.true(searched.ok);
  if (!searched.ok) return;
  t.is(searched.event.event.itemId, 4);
  t.is(searched.event.shadowEvents?.[0]?.itemId, 7);
  t.is(searched.event.shadowEvents?.[0]?.queryTokens.length, 1);
  t.true(searched.event.shadowEvents![0]!.queryTokens.every((token) => token < 16), 'tokens in the shadow\'s buckets');
  const plain = featurizer.featurize('play', kafkaMessage(cases[0]!), now);
  t.is(plain.ok ? plain.event.shadowEvents : 'refused', undefined, 'none without shadows');
  // Refusals do not depend on the model: the same for both.
  t.like(withShadow.featurizeRecord(cases[5]!, 't', 0, 1, now), { ok: false, rejection: { reason: RejectReasons.INVALID_USER_ID } });
});
