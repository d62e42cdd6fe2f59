// `taste simulate`: writes a synthetic data set (events JSONL, catalogue TSV, true tastes JSONL).
// Streams: memory stays bounded however many events are written.
import type { Writable } from 'node:stream';
import { defaultCatalogueOptions } from '../simulator/catalogue.js';
import { writeCatalogueTsv, writeEventsJsonl, writeLatentTastes } from '../simulator/jsonl.js';
import type { EventRecord } from '../events/event-record.js';
import { EventStats } from '../simulator/stats.js';
import { createWorld, defaultSimulationOptions } from '../simulator/world.js';
import { type FlagSpecs, formatHelp, parseFlags, UsageError } from './flags.js';
import { parseTime } from './options.js';

const DAY_MS = 86_400_000;
const PROGRESS_EVERY = 1_000_000;

const flags = {
  users: { type: 'integer', env: 'TASTE_SIMULATE_USERS', default: defaultSimulationOptions.users, min: 1, max: 100_000_000, description: 'number of users' },
  items: { type: 'integer', env: 'TASTE_SIMULATE_ITEMS', default: defaultCatalogueOptions.items, min: 200, max: 10_000_000, description: 'catalogue size: tracks, podcast episodes, audiobook chapters' },
  seed: { type: 'string', env: 'TASTE_SIMULATE_SEED', default: String(defaultSimulationOptions.seed), description: 'seed: an integer or any text; the same seed gives the same files' },
  days: { type: 'number', env: 'TASTE_SIMULATE_DAYS', default: 7, min: 1e-6, max: 3650, description: 'simulated days, fractions allowed' },
  start: { type: 'string', env: 'TASTE_SIMULATE_START', default: new Date(defaultSimulationOptions.startTimeMs).toISOString(), description: 'start of the simulated span: ISO 8601 or ms since the epoch' },
  'search-rate': { type: 'number', env: 'TASTE_SIMULATE_SEARCH_RATE', default: defaultSimulationOptions.searchRate, min: 0, max: 0.9, description: 'chance that a session step is a search, 0..0.9' },
  out: { type: 'string', env: 'TASTE_SIMULATE_OUT', default: '-', description: 'events JSONL; "-" is standard output' },
  'catalogue-out': { type: 'string', env: 'TASTE_SIMULATE_CATALOGUE_OUT', description: 'catalogue TSV: uri, kind, genre, artist, title, durationMs (no header)' },
  'tastes-out': { type: 'string', env: 'TASTE_SIMULATE_TASTES_OUT', description: 'true tastes JSONL: {"userId", "genres": {name: weight}, "vector": [...]}' },
  quiet: { type: 'boolean', env: 'TASTE_SIMULATE_QUIET', default: false, description: 'no progress or summary on standard error' },
} as const satisfies FlagSpecs;

export const simulateHelp = `${formatHelp(
  'taste simulate [options]',
  [
    'Writes a deterministic synthetic listening data set: play and search events in time order',
    "(JSONL), and optionally the catalogue (TSV) and each user's true taste (JSONL).",
  ].join('\n'),
  flags,
)}

Example:
  taste simulate --users 2000 --days 14 --seed 7 --out events.jsonl \\
    --catalogue-out catalogue.tsv --tastes-out tastes.jsonl`;

export interface CommandIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** Runs `taste simulate` with `argv` (the arguments after "simulate"); resolves to the exit code. */
export async function runSimulateCommand(
  argv: string[],
  env: NodeJS.ProcessEnv,
  io: CommandIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const { values, help } = parseFlags(flags, argv, env);
  if (help) {
    io.stdout.write(`${simulateHelp}\n`);
    return 0;
  }
  if (values.seed === '') throw new UsageError('--seed must not be empty');
  for (const flag of ['out', 'catalogue-out', 'tastes-out'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag} must be a file path (got an empty string)`);
  }
  const startTimeMs = parseTime(values.start, '--start');
  if (startTimeMs < 0) throw new UsageError(`--start must not be before 1970, got "${values.start}"`);
  const { users, out, quiet } = values;
  const catalogueOut = values['catalogue-out'];
  const tastesOut = values['tastes-out'];
  const log = (line: string): void => {
    if (!quiet) io.stderr.write(`taste simulate: ${line}\n`);
  };
  try {
    const started = performance.now();
    const world = createWorld({
      seed: /^\d{1,15}$/.test(values.seed) ? Number(values.seed) : values.seed,
      users,
      catalogue: { items: values.items },
      startTimeMs,
      durationMs: values.days * DAY_MS,
      searchRate: values['search-rate'],
    });
    if (catalogueOut !== undefined) {
      const n = await writeCatalogueTsv(world.catalogue.items, catalogueOut);
      log(`wrote ${n} catalogue items to ${catalogueOut}`);
    }
    if (tastesOut !== undefined) {
      const n = await writeLatentTastes(world.users, tastesOut);
      log(`wrote ${n} user tastes to ${tastesOut}`);
    }

    const stats = new EventStats();
    const generationStart = performance.now();
    const counted = (function* (events: Iterable<EventRecord>): Generator<EventRecord> {
      for (const event of events) {
        stats.add(event);
        yield event;
      }
    })(world.events());
    const written = await writeEventsJsonl(counted, out === '-' ? io.stdout : out, {
      progressEvery: PROGRESS_EVERY,
      onProgress: (n) => {
        const seconds = (performance.now() - generationStart) / 1000;
        log(`${n} events, simulated time ${new Date(stats.lastTimeMs).toISOString()}, ${Math.round(n / seconds)} events/s`);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    log(
      `wrote ${written} events for ${users} users to ${out === '-' ? 'standard output' : out} ` +
        `in ${seconds.toFixed(1)} s (${Math.round(written / Math.max(seconds, 1e-3))} events/s)`,
    );
    log(stats.summary());
    return 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return 0; // e.g. `| head`: the reader is done
    io.stderr.write(`taste simulate: failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
