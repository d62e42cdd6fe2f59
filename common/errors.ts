/**
 * One error type for the whole project. The code says what failed, `canRetry` says whether
 * trying the same thing again can help (a Redis outage can; a malformed model cannot).
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'TASTE_CONFIG_INVALID',
  /** A wait for a condition (common/poll.ts) passed its deadline. */
  TIMEOUT: 'TASTE_TIMEOUT',
  MODEL_CONTRACT: 'TASTE_MODEL_CONTRACT',
  MODEL_LOAD: 'TASTE_MODEL_LOAD',
  /** The requested ONNX Runtime execution provider cannot run here: its library is not installed, or no GPU was found. */
  EXECUTION_PROVIDER_UNAVAILABLE: 'TASTE_EXECUTION_PROVIDER_UNAVAILABLE',
  INFERENCE_FAILED: 'TASTE_INFERENCE_FAILED',
  /** No run finished within the pool's task timeout. */
  INFERENCE_TIMEOUT: 'TASTE_INFERENCE_TIMEOUT',
  /** No inference worker is running (all died; replacements are being started). */
  INFERENCE_UNAVAILABLE: 'TASTE_INFERENCE_UNAVAILABLE',
  POOL_CLOSED: 'TASTE_POOL_CLOSED',
  STORE_UNAVAILABLE: 'TASTE_STORE_UNAVAILABLE',
  STORE_CORRUPT: 'TASTE_STORE_CORRUPT',
  STORE_CONFLICT: 'TASTE_STORE_CONFLICT',
  EVENT_INVALID: 'TASTE_EVENT_INVALID',
  KAFKA: 'TASTE_KAFKA',
  /** A command line or environment variable the command cannot use; the message names the flag. */
  USAGE: 'TASTE_USAGE',
  /** `taste rollout set-default` refused the switch (coverage below the threshold, a replica without the version, a concurrent switch). */
  ROLLOUT_REFUSED: 'TASTE_ROLLOUT_REFUSED',
  /** A gRPC call to `taste serve` failed (the client side of serving: evaluate, tools). */
  SERVING_CALL: 'TASTE_SERVING_CALL',
  /** The simulator was given options it cannot use. */
  SIMULATOR_INVALID_OPTION: 'TASTE_SIMULATOR_INVALID_OPTION',
  /** A bug: an invariant of our own code did not hold, or an error nobody translated reached the top. */
  INTERNAL: 'TASTE_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface TasteErrorOptions {
  cause?: unknown;
  /** Whether repeating the operation unchanged may succeed. @default false */
  canRetry?: boolean;
}

export class TasteError extends Error {
  readonly code: ErrorCode;
  readonly canRetry: boolean;

  constructor(code: ErrorCode, message: string, options: TasteErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TasteError';
    this.code = code;
    this.canRetry = options.canRetry ?? false;
  }
}

export function isRetryable(error: unknown): boolean {
  return error instanceof TasteError && error.canRetry;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (cause: ${error.cause.message})` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
