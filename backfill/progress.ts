import type { Logger } from '../common/logger.js';
import type { BackfillProgress, BackfillSummary } from './backfill.js';
import { StopReasons } from './backfill.js';

export interface ProgressDisplayOptions {
  /** Where the bar is drawn (stderr). */
  write: (text: string) => void;
  /** A terminal: draw a bar; otherwise log a line every `logEveryMs`. */
  tty: boolean;
  logger: Logger;
  /** @default 10000 */
  logEveryMs?: number;
  /** Terminal width. @default 100 */
  columns?: number;
}

/** A progress bar with rate and ETA on a terminal; periodic log lines otherwise. */
export class ProgressDisplay {
  readonly #options: ProgressDisplayOptions;
  #lastDraw = 0;
  #drawn = false;

  constructor(options: ProgressDisplayOptions) {
    this.#options = options;
  }

  update(progress: BackfillProgress): void {
    const now = performance.now();
    const { tty, logger } = this.#options;
    const fraction = progress.unitsTotal > 0 ? Math.min(1, progress.unitsDone / progress.unitsTotal) : 1;
    const seconds = progress.runMs / 1000;
    const eventsPerS = seconds > 0 ? progress.runEvents / seconds : 0;
    const unitsPerS = seconds > 0 ? (progress.unitsDone - progress.unitsAtStart) / seconds : 0;
    const etaS = unitsPerS > 0 ? (progress.unitsTotal - progress.unitsDone) / unitsPerS : Number.NaN;
    if (tty) {
      if (now - this.#lastDraw < 100 && fraction < 1) return;
      this.#lastDraw = now;
      const width = 24;
      const filled = Math.round(fraction * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const line =
        `${bar} ${(fraction * 100).toFixed(1).padStart(5)}%  ${compact(progress.records)} records  ${compact(eventsPerS)} events/s` +
        `  applied ${compact(progress.applied)}  dup ${compact(progress.duplicates)}  invalid ${compact(progress.invalid)}  ETA ${duration(etaS)}`;
      this.#options.write(`\r${line.slice(0, (this.#options.columns ?? 100) - 1)}\x1b[K`);
      this.#drawn = true;
      return;
    }
    if (now - this.#lastDraw < (this.#options.logEveryMs ?? 10_000)) return;
    this.#lastDraw = now;
    logger.info('progress', {
      percent: Number((fraction * 100).toFixed(1)),
      records: progress.records,
      events: progress.events,
      applied: progress.applied,
      duplicates: progress.duplicates,
      invalid: progress.invalid,
      eventsPerS: Math.round(eventsPerS),
      etaS: Number.isFinite(etaS) ? Math.round(etaS) : null,
      source: progress.source,
    });
  }

  /** Ends the bar's line, so what follows starts on a new one. */
  end(): void {
    if (this.#drawn) this.#options.write('\n');
    this.#drawn = false;
  }
}

export function formatSummary(summary: BackfillSummary, dryRun: boolean): string {
  const seconds = summary.runMs / 1000;
  const verb = dryRun ? 'would apply' : 'applied';
  const status = {
    [StopReasons.COMPLETE]: dryRun ? 'dry run complete (nothing written)' : 'complete',
    [StopReasons.ALREADY_COMPLETE]: 'already complete (the checkpoint says so): nothing to do',
    [StopReasons.SIGNAL]: 'interrupted: run again with the same --checkpoint to continue',
    [StopReasons.BAD_RECORD]: `stopped at a bad record (--fail-fast): ${summary.bad?.where}: ${summary.bad?.reason}: ${summary.bad?.detail}`,
  }[summary.stoppedBy];
  const lines = [
    `backfill ${status}`,
    `  records read   ${summary.records}${summary.resumed ? ` (all runs of this checkpoint; ${summary.runRecords} in this run)` : ''}`,
    `  events         ${summary.events} valid; ${verb} ${summary.applied}, duplicates skipped ${summary.duplicates}`,
    `  invalid        ${summary.invalid} (skipped)`,
    ...(summary.erased > 0 ? [`  erased         ${summary.erased} (events of users erased after them: dropped, docs/erasure.md)`] : []),
    `  filtered       ${summary.filtered} (--user, --since/--until, blank lines)`,
    `  users          ${summary.usersExact ? '' : '≈'}${summary.users} in this run, ${summary.writes} state writes in ${summary.steps} steps`,
    `  elapsed        ${duration(seconds)} this run (${duration(summary.elapsedMs / 1000)} in all)`,
    `  rate           ${Math.round(seconds > 0 ? summary.runEvents / seconds : 0)} events/s, ${Math.round(seconds > 0 ? summary.runRecords / seconds : 0)} records/s`,
  ];
  return lines.join('\n');
}

function compact(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value));
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
