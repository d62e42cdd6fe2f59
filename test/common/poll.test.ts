import test from 'ava';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { isPollTimeout, pollUntil } from '../../common/poll.js';

test('returns the first value a check gives, after as many checks as it took', async (t) => {
  let calls = 0;
  const value = await pollUntil(() => (++calls === 3 ? 'ready' : undefined), { what: 'the third call', timeoutMs: 5_000, intervalMs: 1 });
  t.is(value, 'ready');
  t.is(calls, 3);
});

test('falsy values other than undefined are answers: 0, false and the empty string end the wait', async (t) => {
  t.is(await pollUntil(async () => 0, { what: 'zero', timeoutMs: 10 }), 0);
  t.is(await pollUntil(() => false, { what: 'false', timeoutMs: 10 }), false);
  t.is(await pollUntil(() => '', { what: 'empty', timeoutMs: 10 }), '');
});

test('after the timeout: a retryable TasteError that names what was awaited and the timeout', async (t) => {
  const started = performance.now();
  const error = await t.throwsAsync(pollUntil(() => undefined, { what: 'a port to answer', timeoutMs: 60, intervalMs: 5 }), { instanceOf: TasteError });
  const took = performance.now() - started;
  t.is(error.code, ErrorCodes.TIMEOUT);
  t.true(error.canRetry);
  t.is(error.message, 'timed out after 60 ms waiting for a port to answer');
  t.true(isPollTimeout(error));
  t.true(took >= 55 && took < 1_000, `took ${took} ms`);
});

test('the last check runs at the deadline, even when the interval is longer than the timeout', async (t) => {
  const checkedAt: number[] = [];
  const started = performance.now();
  await t.throwsAsync(pollUntil(() => void checkedAt.push(performance.now() - started), { what: 'x', timeoutMs: 50, intervalMs: 10_000 }));
  t.is(checkedAt.length, 2);
  t.true(checkedAt[1]! >= 45 && checkedAt[1]! < 1_000, `second check at ${checkedAt[1]} ms`);
});

test('a function `what` is asked at the timeout, so the message says what the last check saw', async (t) => {
  let lag = 10;
  await t.throwsAsync(pollUntil(() => void lag--, { what: () => `lag 0 (still ${lag})`, timeoutMs: 20, intervalMs: 1 }), {
    message: /^timed out after 20 ms waiting for lag 0 \(still -?\d+\)$/,
  });
});

test('the timeout can carry the code of the thing awaited', async (t) => {
  await t.throwsAsync(pollUntil(() => undefined, { what: 'leaders', timeoutMs: 1, code: ErrorCodes.KAFKA }), { instanceOf: TasteError, code: ErrorCodes.KAFKA });
});

test('a check that throws ends the wait with its own error, without another check', async (t) => {
  let calls = 0;
  const boom = new TasteError(ErrorCodes.CONFIG_INVALID, 'wrong password');
  const error = await t.throwsAsync(
    pollUntil(() => {
      calls++;
      throw boom;
    }, { what: 'x', timeoutMs: 5_000, intervalMs: 1 }),
  );
  t.is(error, boom);
  t.is(calls, 1);
  t.false(isPollTimeout(error));
});

test('an abort ends the wait at once with the signal reason, during the pause between checks', async (t) => {
  const controller = new AbortController();
  const reason = new TasteError(ErrorCodes.POOL_CLOSED, 'shutting down');
  setTimeout(() => controller.abort(reason), 20);
  const started = performance.now();
  const error = await t.throwsAsync(pollUntil(() => undefined, { what: 'x', timeoutMs: 60_000, intervalMs: 30_000, signal: controller.signal }));
  t.is(error, reason);
  t.true(performance.now() - started < 1_000);
  const aborted = AbortSignal.abort();
  let calls = 0;
  // AbortSignal.abort()'s default reason is a DOMException, which ava's throwsAsync does not take for an error.
  const stopped: unknown = await pollUntil(() => void calls++, { what: 'x', timeoutMs: 1_000, signal: aborted }).catch((error: unknown) => error);
  t.is(stopped, aborted.reason);
  t.is((stopped as { name?: string }).name, 'AbortError');
  t.is(calls, 0, 'an aborted signal runs no check');
});
