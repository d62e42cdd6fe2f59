// `taste simulate`: writes a synthetic data set (events JSONL, catalogue TSV, true tastes JSONL).
// Streams: memory stays bounded however many events are written.
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { writeCatalogueTsv, writeEventsJsonl, writeLatentTastes } from './jsonl.js';
import type { EventRecord } from '../events/event-record.js';
import { EventStats } from './stats.js';
import { createWorld, defaultSimulationOptions } from './world.js';
import { defaultCatalogueOptions } from './catalogue.js';

export const simulateUsage = `Usage: taste simulate [options]

Writes a deterministic synthetic listening data set: play and search events in time order
(JSONL), and optionally the catalogue (TSV) and each user's true taste (JSONL).

Options:
  --users N              number of users (default ${defaultSimulationOptions.users})
  --items N              catalogue size: tracks, podcast episodes, audiobook chapters (default ${defaultCatalogueOptions.items})
  --seed S               seed: an integer or any text; the same seed gives the same files (default ${defaultSimulationOptions.seed})
  --days D               simulated days, fractions allowed (default 7)
  --start T              start of the simulated span: ISO 8601 or ms since the epoch
                         (default ${new Date(defaultSimulationOptions.startTimeMs).toISOString()})
  --search-rate R        chance that a session step is a search, 0..0.9 (default ${defaultSimulationOptions.searchRate})
  --out PATH             events JSONL; "-" is standard output (default -)
  --catalogue-out PATH   catalogue TSV: uri, kind, genre, artist, title, durationMs (no header)
  --tastes-out PATH      true tastes JSONL: {"userId", "genres": {name: weight}, "vector": [...]}
  --quiet                no progress or summary on standard error
  -h, --help             show this help

Example:
  taste simulate --users 2000 --days 14 --seed 7 --out events.jsonl \\
    --catalogue-out catalogue.tsv --tastes-out tastes.jsonl
`;

export interface CommandIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
}

const DAY_MS = 86_400_000;
const PROGRESS_EVERY = 1_000_000;

class UsageError extends Error {}

/** Runs `taste simulate` with `argv` (the arguments after "simulate"); resolves to the exit code. */
export async function runSimulateCommand(
  argv: string[],
  io: CommandIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let settings: Settings | 'help';
  try {
    settings = parseSettings(argv);
  } catch (error) {
    if (!(error instanceof UsageError) && !isParseArgsError(error)) throw error;
    io.stderr.write(`taste simulate: ${(error as Error).message}\nRun 'taste simulate --help' for usage.\n`);
    return 2;
  }
  if (settings === 'help') {
    io.stdout.write(simulateUsage);
    return 0;
  }
  const { quiet } = settings;
  const log = (line: string): void => {
    if (!quiet) io.stderr.write(`taste simulate: ${line}\n`);
  };
  try {
    const started = performance.now();
    const world = createWorld({
      seed: settings.seed,
      users: settings.users,
      catalogue: { items: settings.items },
      startTimeMs: settings.startTimeMs,
      durationMs: settings.days * DAY_MS,
      searchRate: settings.searchRate,
    });
    if (settings.catalogueOut !== undefined) {
      const n = await writeCatalogueTsv(world.catalogue.items, settings.catalogueOut);
      log(`wrote ${n} catalogue items to ${settings.catalogueOut}`);
    }
    if (settings.tastesOut !== undefined) {
      const n = await writeLatentTastes(world.users, settings.tastesOut);
      log(`wrote ${n} user tastes to ${settings.tastesOut}`);
    }

    const stats = new EventStats();
    const generationStart = performance.now();
    const counted = (function* (events: Iterable<EventRecord>): Generator<EventRecord> {
      for (const event of events) {
        stats.add(event);
        yield event;
      }
    })(world.events());
    const destination = settings.out === '-' ? io.stdout : settings.out;
    const written = await writeEventsJsonl(counted, destination, {
      progressEvery: PROGRESS_EVERY,
      onProgress: (n) => {
        const seconds = (performance.now() - generationStart) / 1000;
        log(`${n} events, simulated time ${new Date(stats.lastTimeMs).toISOString()}, ${Math.round(n / seconds)} events/s`);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    log(
      `wrote ${written} events for ${settings.users} users to ${settings.out === '-' ? 'standard output' : settings.out} ` +
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

interface Settings {
  readonly quiet: boolean;
  readonly users: number;
  readonly items: number;
  readonly seed: number | string;
  readonly days: number;
  readonly startTimeMs: number;
  readonly searchRate: number;
  readonly out: string;
  readonly catalogueOut: string | undefined;
  readonly tastesOut: string | undefined;
}

/** The settings, or 'help' when help was asked for (whatever else is on the line). */
function parseSettings(argv: string[]): Settings | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      users: { type: 'string' },
      items: { type: 'string' },
      seed: { type: 'string' },
      days: { type: 'string' },
      start: { type: 'string' },
      'search-rate': { type: 'string' },
      out: { type: 'string' },
      'catalogue-out': { type: 'string' },
      'tastes-out': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  const seedText = values.seed ?? String(defaultSimulationOptions.seed);
  if (seedText === '') throw new UsageError('--seed must not be empty');
  return {
    quiet: values.quiet ?? false,
    users: integerFlag('--users', values.users, defaultSimulationOptions.users, 1, 100_000_000),
    items: integerFlag('--items', values.items, defaultCatalogueOptions.items, 200, 10_000_000),
    seed: /^\d{1,15}$/.test(seedText) ? Number(seedText) : seedText,
    days: numberFlag('--days', values.days, 7, 1e-6, 3650),
    startTimeMs: timeFlag('--start', values.start, defaultSimulationOptions.startTimeMs),
    searchRate: numberFlag('--search-rate', values['search-rate'], defaultSimulationOptions.searchRate, 0, 0.9),
    out: pathFlag('--out', values.out) ?? '-',
    catalogueOut: pathFlag('--catalogue-out', values['catalogue-out']),
    tastesOut: pathFlag('--tastes-out', values['tastes-out']),
  };
}

function integerFlag(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
  }
  return value;
}

function numberFlag(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = /^\d*\.?\d+(e[+-]?\d+)?$/i.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`${flag} must be a number from ${min} to ${max} (got ${JSON.stringify(text)})`);
  }
  return value;
}

function timeFlag(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new UsageError(`${flag} must be an ISO 8601 time (2026-01-05T00:00:00Z) or ms since the epoch (got ${JSON.stringify(text)})`);
  }
  return value;
}

function pathFlag(flag: string, text: string | undefined): string | undefined {
  if (text === '') throw new UsageError(`${flag} must be a file path (got an empty string)`);
  return text;
}

function isParseArgsError(error: unknown): error is Error {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}
