import test from 'ava';
import { once } from 'node:events';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { InferencePool, type InferencePoolEvent } from '../../model/inference-pool.js';
import { EventKinds, Streams, type WindowEvent } from '../../events/window-event.js';
import { loadModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR, eventually } from '../helpers/environment.js';
import { HANG_MS, workerRecorder } from '../helpers/inference-faults.js';

// The workers here are the real inference workers running real ONNX Runtime sessions, with the
// faults of test/helpers/inference-faults.ts.

function windows(users: number, length = 20): WindowEvent[][] {
  return Array.from({ length: users }, (_, user) =>
    Array.from({ length }, (_, index) => ({
      eventTimeMs: 1_764_000_000_000 + index * 60_000,
      stream: Streams.PLAY,
      partition: 0,
      offset: index,
      itemId: 2 + ((user + index) % 50),
      kind: EventKinds.COMPLETED,
      queryTokens: [],
    })),
  );
}

async function rejection(promise: Promise<unknown>): Promise<TasteError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TasteError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

test('a worker that dies is replaced: the run it held fails retryably, health dips, and the pool answers again', async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const events: InferencePoolEvent[] = [];
  const { started, createWorker } = workerRecorder((start) => ({ onFirstRequest: start === 0 ? 'crash' : undefined }));
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1, respawnDelayMs: 50, createWorker, observer: { onEvent: (event) => events.push(event) } });
  t.teardown(() => pool.close());
  t.true(pool.healthy);
  events.length = 0;

  const error = await rejection(pool.embed(windows(4)));
  t.is(error.code, ErrorCodes.INFERENCE_FAILED);
  t.true(error.canRetry);

  await eventually(async () => (pool.healthy ? true : undefined), 'the replacement worker', 20_000, 20);
  t.is(started.length, 2, 'one replacement started');
  t.is((await pool.embed(windows(3))).length, 3);
  t.deepEqual(
    events.map((event) => event.type),
    ['worker-exited', 'health', 'worker-replaced', 'health'],
  );
  t.deepEqual(events.filter((event) => event.type === 'health').map((event) => event.healthy), [false, true]);
});

test('a replacement that fails to start: waiting runs are rejected with a coded error, the pool reports unhealthy, and respawns back off until one starts', async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const events: InferencePoolEvent[] = [];
  // Starts 1 and 2 (the first two replacements) point ONNX Runtime at a file that does not exist.
  const { started, createWorker } = workerRecorder((start, init) =>
    start === 0 ? { onFirstRequest: 'crash' } : start === 1 || start === 2 ? { init: { ...init, modelPath: `${init.modelPath}.missing` } } : {},
  );
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1, respawnDelayMs: 100, createWorker, observer: { onEvent: (event) => events.push(event) } });
  t.teardown(() => pool.close());
  events.length = 0;

  const running = pool.embed(windows(4));
  const waiting = pool.embed(windows(8));
  t.is((await rejection(running)).code, ErrorCodes.INFERENCE_FAILED);
  const waited = await rejection(waiting);
  t.is(waited.code, ErrorCodes.INFERENCE_UNAVAILABLE, 'the queued run is told, not left hanging');
  t.true(waited.canRetry);
  t.regex(waited.message, /no inference worker is running: ONNX Runtime could not load .*\.missing/);
  t.false(pool.healthy);

  const meanwhile = await rejection(pool.embed(windows(2)));
  t.is(meanwhile.code, ErrorCodes.INFERENCE_UNAVAILABLE, 'a run asked for while no worker is up fails fast');

  await eventually(async () => (pool.healthy ? true : undefined), 'a replacement that starts', 20_000, 20);
  t.is(started.length, 4, 'two failed replacements, then one that started');
  t.is((await pool.embed(windows(5))).length, 5);
  const failures = events.filter((event) => event.type === 'respawn-failed');
  t.deepEqual(
    failures.map((event) => [event.attempt, event.retryInMs, event.error.code]),
    [
      [1, 100, ErrorCodes.MODEL_LOAD],
      [2, 200, ErrorCodes.MODEL_LOAD],
    ],
  );
  t.deepEqual(events.filter((event) => event.type === 'health').map((event) => event.healthy), [false, true]);
});

test('a run that hangs is rejected at the task timeout, a replacement takes over at once, and the hung worker is ended when it returns', async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const events: InferencePoolEvent[] = [];
  const { started, createWorker } = workerRecorder((start) => ({ onFirstRequest: start === 0 ? 'hang' : undefined }));
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1, taskTimeoutMs: 500, respawnDelayMs: 50, createWorker, observer: { onEvent: (event) => events.push(event) } });
  t.teardown(() => pool.close());

  const began = Date.now();
  const error = await rejection(pool.embed(windows(2)));
  t.is(error.code, ErrorCodes.INFERENCE_TIMEOUT);
  t.true(error.canRetry);
  t.true(Date.now() - began < HANG_MS, 'rejected at the timeout, not when the hung run ends');
  const hungExits = once(started[0]!, 'exit');

  await eventually(async () => (started.length === 2 && pool.workers === 1 ? true : undefined), 'the replacement of the hung worker', 20_000, 20);
  t.is((await pool.embed(windows(2))).length, 2);
  t.true(events.some((event) => event.type === 'task-timed-out' && event.timeoutMs === 500 && event.workerReplaced));
  await hungExits; // its run returned; the pool ended it rather than leave the thread behind
  t.is(pool.workers, 1);
});

test('closing the pool while a run is in flight lets the run finish, then ends the workers', async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const { started, createWorker } = workerRecorder();
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1, createWorker });
  const exited = once(started[0]!, 'exit');
  const running = pool.embed(windows(256, 50));
  await pool.close();
  t.is((await running).length, 256);
  await exited;
});

test('closing the pool cuts a respawn backoff short and rejects what waits', async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const { started, createWorker } = workerRecorder((start, init) => (start >= 1 ? { init: { ...init, modelPath: `${init.modelPath}.missing` } } : {}));
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1, respawnDelayMs: 60_000, createWorker });
  await started[0]!.terminate();
  await eventually(async () => (started.length === 2 ? true : undefined), 'the failed replacement', 20_000, 20);
  const began = Date.now();
  await pool.close();
  t.true(Date.now() - began < 5_000);
  t.is((await rejection(pool.embed(windows(1)))).code, ErrorCodes.POOL_CLOSED);
});
