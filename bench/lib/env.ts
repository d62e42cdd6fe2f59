import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * Benchmark settings. Benchmarks are entry points, so they (and only they, in bench/) read the
 * environment: the services from `deploy/local/services.sh env`, the model, the output folder.
 */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const KAFKA_BROKERS = (process.env.TASTE_KAFKA_BROKERS ?? '127.0.0.1:39092').split(',');
export const REDIS_URL = process.env.TASTE_REDIS_URL ?? 'redis://127.0.0.1:36379';
export const MODEL_DIR = process.env.TASTE_BENCH_MODEL ?? `${REPO_ROOT}models/default`;
/** Where each benchmark writes `<name>.json`; unset: nothing written. */
export const OUT_DIR = process.env.TASTE_BENCH_OUT;
/** Every Redis key and Kafka topic a benchmark makes starts with this, so cleanup can find them. */
export const BENCH_PREFIX = 'bench';

export function unique(what: string): string {
  return `${BENCH_PREFIX}-${what}-${randomUUID().slice(0, 8)}`;
}

export interface BenchArgs {
  long: boolean;
  repeats: number;
  values: Record<string, string | boolean | undefined>;
}

/**
 * `--long` selects the full set; `--repeats N` how often key figures are measured (default 3);
 * other `--name value` options are bench-specific and read with `numberArg`.
 */
export function benchArgs(extra: Record<string, { type: 'string' | 'boolean' }> = {}): BenchArgs {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { long: { type: 'boolean', default: false }, repeats: { type: 'string' }, ...extra },
    strict: true,
  });
  const repeats = values.repeats === undefined ? 3 : Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${String(values.repeats)}`);
  return { long: Boolean(values.long), repeats, values: values as BenchArgs['values'] };
}

export function numberArg(args: BenchArgs, name: string, fallback: number): number {
  const raw = args.values[name];
  if (raw === undefined || typeof raw === 'boolean') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got ${raw}`);
  return value;
}

export function stringArg(args: BenchArgs, name: string, fallback: string): string {
  const raw = args.values[name];
  return typeof raw === 'string' ? raw : fallback;
}
