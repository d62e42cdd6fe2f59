import { decodeErasureRequest } from '../proto/erasure-codec.js';
import { type Rejection, RejectReasons, type ValidationLimits } from './validation.js';
import { isValidUserId, USER_ID_PATTERN } from './user-id.js';

/** A validated erasure request (proto/taste/v1/erasure.proto): forget `userId` up to `requestTimeMs`. */
export interface ErasureRequest {
  userId: string;
  /** Events with an event time at or before it are erased, and stay erased. */
  requestTimeMs: number;
  requestId: string;
}

/** Request ids: the same characters as user ids, so they can be logged and stored as they are. */
const REQUEST_ID_PATTERN = USER_ID_PATTERN;

export type ErasureParse = { ok: true; request: ErasureRequest } | { ok: false; rejection: Rejection };

/**
 * A Kafka record of the erasure topic → the request, or why it is refused (it is dead-lettered).
 * Never throws. A request time in the future past the clock skew is refused like such an event
 * time: it would erase events that have not happened yet.
 */
export function parseErasureRequest(
  key: Buffer | null,
  value: Buffer | null,
  nowMs: number,
  limits: Pick<ValidationLimits, 'minEventTimeMs' | 'maxFutureSkewMs'>,
  maxMessageBytes = 4_096,
): ErasureParse {
  if (!value || value.length === 0) return refuse(RejectReasons.UNDECODABLE, 'empty payload');
  if (value.length > maxMessageBytes) return refuse(RejectReasons.PAYLOAD_TOO_LARGE, `${value.length} bytes > ${maxMessageBytes}`);
  let decoded;
  try {
    decoded = decodeErasureRequest(value);
  } catch (error) {
    return refuse(RejectReasons.UNDECODABLE, `not a taste.v1.ErasureRequest: ${(error as Error).message}`);
  }
  const { userId, requestTimeMs, requestId } = decoded;
  if (userId === '') return refuse(RejectReasons.MISSING_USER_ID, 'user_id is empty');
  if (!isValidUserId(userId)) return refuse(RejectReasons.INVALID_USER_ID, 'user_id must be 1-128 characters of [A-Za-z0-9._:@+=-]');
  const keyText = key?.toString() ?? null;
  if (keyText !== userId) {
    return refuse(RejectReasons.KEY_MISMATCH, `message key ${JSON.stringify(keyText)} is not the user_id (requests must be keyed by user)`);
  }
  if (requestId === '') return refuse(RejectReasons.MISSING_REQUEST_ID, 'request_id is empty');
  if (!REQUEST_ID_PATTERN.test(requestId)) {
    return refuse(RejectReasons.INVALID_REQUEST_ID, 'request_id must be 1-128 characters of [A-Za-z0-9._:@+=-]');
  }
  if (!Number.isSafeInteger(requestTimeMs) || requestTimeMs < limits.minEventTimeMs || requestTimeMs > nowMs + limits.maxFutureSkewMs) {
    return refuse(RejectReasons.REQUEST_TIME_OUT_OF_RANGE, `request_time_ms ${requestTimeMs} is not a plausible time`);
  }
  return { ok: true, request: { userId, requestTimeMs, requestId } };
}

function refuse(reason: Rejection['reason'], detail: string): ErasureParse {
  return { ok: false, rejection: { reason, detail } };
}
