import { createRequire } from 'node:module';

/**
 * Works around kafkajs 2.2.4's idle spin (tulios/kafkajs#1556, #1704; fix proposed in PR #1667,
 * unmerged, the project unmaintained): after every fulfilled request each broker connection's
 * RequestQueue schedules a check of its pending requests; with none pending and no throttle, the
 * delay it computes is negative, so the check runs on the next timer tick and schedules itself
 * again, for ever. An idle `taste consume` spent about 30 ms of CPU per second in that loop.
 *
 * The check only has work when requests wait (they are sent when one in flight completes, or when
 * a broker's throttle ends), so with nothing pending and no throttle ahead it is not scheduled.
 * Applied once, to the version it was written against only: another kafkajs is left as it is, and
 * test/consumers/kafkajs-idle-fix.test.ts fails until this is looked at again.
 */
export const KAFKAJS_VERSION_FIXED = '2.2.4';

interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const require = createRequire(import.meta.url);
let applied: boolean | undefined;

/** True when the fix is in place (idempotent). */
export function applyKafkajsIdleFix(): boolean {
  if (applied !== undefined) return applied;
  const version = (require('kafkajs/package.json') as { version: string }).version;
  if (version !== KAFKAJS_VERSION_FIXED) return (applied = false);
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueInternals };
  const schedule = RequestQueue.prototype.scheduleCheckPendingRequests;
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueueInternals) {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    schedule.call(this);
  };
  return (applied = true);
}
