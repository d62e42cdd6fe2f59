import { isRetryable } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, the first included. @default 5 */
  attempts?: number;
  /** Delay before the second attempt; doubles after each, with full jitter. @default 100 */
  initialDelayMs?: number;
  /** Cap on one delay. @default 5000 */
  maxDelayMs?: number;
  /** Called before each wait, e.g. to heartbeat or log. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void | Promise<void>;
  /** Decides whether an error is worth another attempt. @default isRetryable */
  shouldRetry?: (error: unknown) => boolean;
  /** Stops retrying early (e.g. on shutdown). */
  signal?: AbortSignal;
}

export const defaultRetryOptions = { attempts: 5, initialDelayMs: 100, maxDelayMs: 5000 } as const;

/** Exponential backoff with full jitter, capped; non-retryable errors are rethrown at once. */
export async function withRetry<T>(operation: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? defaultRetryOptions.attempts;
  const shouldRetry = options.shouldRetry ?? isRetryable;
  let delay = options.initialDelayMs ?? defaultRetryOptions.initialDelayMs;
  const maxDelay = options.maxDelayMs ?? defaultRetryOptions.maxDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= attempts || !shouldRetry(error) || options.signal?.aborted) throw error;
      const wait = Math.round(Math.random() * Math.min(delay, maxDelay));
      await options.onRetry?.(error, attempt, wait);
      await sleep(wait, options.signal);
      delay *= 2;
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
