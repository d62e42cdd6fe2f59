import { type ErrorCode, ErrorCodes, TasteError } from './errors.js';
import { sleep } from './retry.js';

export interface PollOptions {
  /**
   * What is awaited, for the timeout's message ("leaders for topic t", "lag 0 of group g"). A
   * function is asked only at the timeout, so the message can say what the last check saw.
   */
  what: string | (() => string);
  /** Longest wait, counted from the first check. */
  timeoutMs: number;
  /** Pause between one check's end and the next one's start. @default 100 */
  intervalMs?: number;
  /** Stops the wait: it rejects with the signal's reason (an AbortError unless one was given). */
  signal?: AbortSignal;
  /** Code of the timeout's error. @default ErrorCodes.TIMEOUT */
  code?: ErrorCode;
}

export const defaultPollOptions = { intervalMs: 100 } as const;

/**
 * Calls `check` until it returns something other than `undefined`, and returns that. Checks never
 * overlap, and one runs at the deadline, so a condition met just in time is not missed. A check that
 * throws ends the wait with its error: what means "not yet" (a broker moment, a refused connection)
 * is for `check` to catch. After `timeoutMs`, a retryable TasteError names `what` and the timeout.
 */
export async function pollUntil<T>(check: () => T | undefined | Promise<T | undefined>, options: PollOptions): Promise<T> {
  const { signal } = options;
  const intervalMs = options.intervalMs ?? defaultPollOptions.intervalMs;
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const value = await check();
    if (value !== undefined) return value;
    // Under a millisecond left counts as none: timers fire on whole milliseconds of a cached clock.
    const remaining = deadline - performance.now();
    if (remaining < 1) {
      const what = typeof options.what === 'function' ? options.what() : options.what;
      throw new TasteError(options.code ?? ErrorCodes.TIMEOUT, `timed out after ${options.timeoutMs} ms waiting for ${what}`, { canRetry: true });
    }
    await sleep(Math.min(intervalMs, Math.ceil(remaining)), signal);
  }
}

/** Whether `error` is pollUntil's timeout (with the default code), for callers that carry on after one. */
export function isPollTimeout(error: unknown): boolean {
  return error instanceof TasteError && error.code === ErrorCodes.TIMEOUT;
}
