import test from 'ava';
import { fnv1a32, playEventKind, tokenizeQuery } from '../../events/featurization.js';
import { EventKinds } from '../../events/window-event.js';

test('fnv1a32 matches the published FNV-1a test vectors', (t) => {
  const encode = (text: string) => new TextEncoder().encode(text);
  t.is(fnv1a32(encode('')), 0x811c9dc5);
  t.is(fnv1a32(encode('a')), 0xe40c292c);
  t.is(fnv1a32(encode('foobar')), 0xbf9cf968);
});

test('a play counts as completed, skipped or played by end reason and time played', (t) => {
  t.is(playEventKind('END_REASON_COMPLETED', 0, 0), EventKinds.COMPLETED);
  t.is(playEventKind('END_REASON_USER_STOPPED', 180_000, 200_000), EventKinds.COMPLETED);
  t.is(playEventKind('END_REASON_SKIPPED_FORWARD', 100_000, 200_000), EventKinds.SKIPPED);
  t.is(playEventKind('END_REASON_USER_STOPPED', 29_999, 200_000), EventKinds.SKIPPED);
  t.is(playEventKind('END_REASON_USER_STOPPED', 30_000, 200_000), EventKinds.PLAY);
  t.is(playEventKind('END_REASON_UNSPECIFIED', 60_000, 0), EventKinds.PLAY);
});

test('queries are NFKC-normalised, lowercased and split on letters and digits', (t) => {
  const ids = (query: string) => tokenizeQuery(query, 8, 4096);
  t.deepEqual(ids('Daft  Punk!'), ids('daft punk'));
  t.deepEqual(ids('ﬁne'), ids('fine'));
  t.deepEqual(ids('１２３'), ids('123'));
  t.deepEqual(ids('?!…'), []);
  t.is(ids('a b c d e f g h i j').length, 8);
  for (const id of ids('anything at all')) t.true(id >= 1 && id <= 4095);
});
