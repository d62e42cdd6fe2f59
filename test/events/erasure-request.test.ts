import test from 'ava';
import protobuf from 'protobufjs';
import { parseErasureRequest } from '../../events/erasure-request.js';
import { defaultValidationLimits } from '../../events/validation.js';
import { encodeErasureRequest } from '../../proto/erasure-codec.js';

// The request's wire form is taste.v1.ErasureRequest: the expectations below encode it with a
// schema written out here by hand (field numbers and types of proto/taste/v1/erasure.proto), so
// a renumbered field fails this test, not only the code that reads it.
const handWritten = protobuf.Root.fromJSON({
  nested: { ErasureRequest: { fields: { user_id: { type: 'string', id: 1 }, request_time_ms: { type: 'int64', id: 2 }, request_id: { type: 'string', id: 3 } } } },
}).lookupType('ErasureRequest');

const NOW = Date.UTC(2026, 11, 1);
const wire = (fields: Record<string, unknown>) => Buffer.from(handWritten.encode(handWritten.fromObject(fields)).finish());
const parse = (key: string | null, value: Buffer | null) => parseErasureRequest(key === null ? null : Buffer.from(key), value, NOW, defaultValidationLimits);

test('a well-formed request, keyed by its user, parses to the user, the request time and the id', (t) => {
  const value = wire({ user_id: 'u-1', request_time_ms: NOW - 5, request_id: 'req-9' });
  t.deepEqual(parse('u-1', value), { ok: true, request: { userId: 'u-1', requestTimeMs: NOW - 5, requestId: 'req-9' } });
  t.deepEqual(value, encodeErasureRequest({ userId: 'u-1', requestTimeMs: NOW - 5, requestId: 'req-9' }), 'our encoder writes the same bytes');
});

test('malformed requests are refused with the reason a dead letter carries', (t) => {
  const good = { user_id: 'u-1', request_time_ms: NOW, request_id: 'req-1' };
  const cases: [string, string | null, Buffer | null, string][] = [
    ['no payload', 'u-1', null, 'UNDECODABLE'],
    ['empty payload', 'u-1', Buffer.alloc(0), 'UNDECODABLE'],
    ['not protobuf', 'u-1', Buffer.from([0xff, 0xff, 0xff]), 'UNDECODABLE'],
    ['too large', 'u-1', Buffer.alloc(5000, 1), 'PAYLOAD_TOO_LARGE'],
    ['no user', '', wire({ ...good, user_id: '' }), 'MISSING_USER_ID'],
    ['a user id with a hash-tag brace', 'a{b}', wire({ ...good, user_id: 'a{b}' }), 'INVALID_USER_ID'],
    ['keyed by someone else', 'u-2', wire(good), 'KEY_MISMATCH'],
    ['not keyed', null, wire(good), 'KEY_MISMATCH'],
    ['no request id', 'u-1', wire({ ...good, request_id: '' }), 'MISSING_REQUEST_ID'],
    ['a request id with a space', 'u-1', wire({ ...good, request_id: 'a b' }), 'INVALID_REQUEST_ID'],
    ['no request time', 'u-1', wire({ ...good, request_time_ms: 0 }), 'REQUEST_TIME_OUT_OF_RANGE'],
    ['a request time two days ahead (past the clock skew allowed)', 'u-1', wire({ ...good, request_time_ms: NOW + 2 * 86_400_000 }), 'REQUEST_TIME_OUT_OF_RANGE'],
  ];
  for (const [what, key, value, reason] of cases) {
    const parsed = parse(key, value);
    t.false(parsed.ok, what);
    if (!parsed.ok) {
      t.is(parsed.rejection.reason as string, reason, what);
      t.true(parsed.rejection.detail.length > 0, what);
    }
  }
});

test('a request time within the clock skew allowed is accepted', (t) => {
  t.true(parse('u-1', wire({ user_id: 'u-1', request_time_ms: NOW + 3_600_000, request_id: 'r' })).ok);
});
