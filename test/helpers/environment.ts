import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../../common/poll.js';

/** Where the real services are; scripts/test.sh starts them and exports these. */
export const KAFKA_BROKERS = (process.env.TASTE_KAFKA_BROKERS ?? '127.0.0.1:39092').split(',');
export const REDIS_URL = process.env.TASTE_REDIS_URL ?? 'redis://127.0.0.1:36379';
/**
 * The model the suites run. TASTE_TEST_MODEL_DIR runs the reliability suite with another one (e.g.
 * models/stateful); the default-model tests (parity, e2e, pipeline evaluation) expect models/default.
 */
export const DEFAULT_MODEL_DIR = process.env.TASTE_TEST_MODEL_DIR ?? fileURLToPath(new URL('../../../models/default', import.meta.url));

/** A name no other test uses, so test files can run in parallel against the same services. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** The first value `probe` gives other than undefined (common/poll.ts, with the tests' defaults). */
export function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  return pollUntil(probe, { what, timeoutMs, intervalMs });
}
