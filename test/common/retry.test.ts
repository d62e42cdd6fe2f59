import test from 'ava';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { withRetry } from '../../common/retry.js';

const retryable = () => new TasteError(ErrorCodes.STORE_UNAVAILABLE, 'Redis is away', { canRetry: true });
const final = () => new TasteError(ErrorCodes.EVENT_INVALID, 'bad input');

/** An operation that fails `failures` times with `error()`, then returns how many calls it took. */
function flaky(failures: number, error: () => Error) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    run: async () => {
      calls++;
      if (calls <= failures) throw error();
      return calls;
    },
  };
}

test('a retryable failure is tried again until it works', async (t) => {
  const operation = flaky(3, retryable);
  t.is(await withRetry(operation.run, { initialDelayMs: 1 }), 4);
});

test('a failure that retrying cannot fix is thrown at once, without waiting', async (t) => {
  const operation = flaky(1, final);
  const waits: number[] = [];
  const error = await t.throwsAsync(withRetry(operation.run, { onRetry: (_error, _attempt, delay) => void waits.push(delay) }));
  t.is((error as TasteError).code, ErrorCodes.EVENT_INVALID);
  t.is(operation.calls, 1);
  t.deepEqual(waits, []);
});

test('attempts count the first call; the last error is what the caller gets', async (t) => {
  const operation = flaky(10, retryable);
  const error = await t.throwsAsync(withRetry(operation.run, { attempts: 3, initialDelayMs: 1 }));
  t.is((error as TasteError).code, ErrorCodes.STORE_UNAVAILABLE);
  t.is(operation.calls, 3);
});

test('each wait is drawn from 0..min(initial x 2^(n-1), cap), reported before it starts', async (t) => {
  const seen: [number, number][] = [];
  const operation = flaky(6, retryable);
  await withRetry(operation.run, {
    attempts: 7,
    initialDelayMs: 4,
    maxDelayMs: 10,
    onRetry: (_error, attempt, delay) => void seen.push([attempt, delay]),
  });
  t.deepEqual(seen.map(([attempt]) => attempt), [1, 2, 3, 4, 5, 6]);
  const caps = [4, 8, 10, 10, 10, 10];
  seen.forEach(([attempt, delay], index) => {
    t.true(Number.isInteger(delay) && delay >= 0 && delay <= caps[index]!, `attempt ${attempt}: waited ${delay} ms, cap ${caps[index]}`);
  });
});

test('shouldRetry decides instead of canRetry when given', async (t) => {
  const operation = flaky(2, final);
  t.is(await withRetry(operation.run, { initialDelayMs: 1, shouldRetry: (error) => error instanceof TasteError }), 3);
});

test('an abort ends the retries: a wait in progress is cut short and the error is thrown', async (t) => {
  const controller = new AbortController();
  const operation = flaky(Number.POSITIVE_INFINITY, retryable);
  const began = Date.now();
  const pending = withRetry(operation.run, {
    attempts: Number.POSITIVE_INFINITY,
    initialDelayMs: 60_000,
    maxDelayMs: 60_000,
    onRetry: () => {
      setTimeout(() => controller.abort(), 20);
    },
    signal: controller.signal,
  });
  const error = await t.throwsAsync(pending);
  t.is((error as TasteError).code, ErrorCodes.STORE_UNAVAILABLE);
  t.true(Date.now() - began < 5_000);
  t.is(operation.calls, 2, 'one call after the cut-short wait, then no more');
});
