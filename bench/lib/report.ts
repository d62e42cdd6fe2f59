import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineLoad } from './cpu.js';
import { fmt, fmtSpread, type Spread } from './stats.js';

/**
 * What a benchmark reports: each figure beside its ceiling (or baseline) measured in the same run,
 * the ratio of the two, and the goal it is held to. `finish()` prints the ratios as the last
 * lines and writes the figures as JSON for bench/summary.ts.
 */

/** `min-ratio`: ratio must be ≥ target. `max-value`: value must be ≤ target (latencies). */
export type Goal = { kind: 'min-ratio'; target: number } | { kind: 'max-value'; target: number } | { kind: 'max-ratio'; target: number };

export interface Figure {
  /** Stable id, e.g. `ingest.events_per_s`. */
  id: string;
  label: string;
  unit: string;
  value: number;
  spread?: Spread;
  /** The ceiling / baseline measured in the same run. */
  ceiling?: number;
  ceilingLabel?: string;
  ceilingSpread?: Spread;
  /** value / ceiling. For latencies (`lowerIsBetter`) a ratio ≥ 1 is the overhead. */
  ratio?: number;
  lowerIsBetter?: boolean;
  goal?: Goal;
  note?: string;
}

export interface FigureResult extends Figure {
  met?: boolean;
}

export function goalText(goal: Goal | undefined, unit: string): string {
  if (!goal) return '–';
  if (goal.kind === 'min-ratio') return `ratio ≥ ${goal.target}`;
  if (goal.kind === 'max-ratio') return `ratio ≤ ${goal.target}`;
  return `≤ ${goal.target} ${unit}`;
}

function evaluate(figure: Figure): boolean | undefined {
  const { goal } = figure;
  if (!goal) return undefined;
  if (goal.kind === 'max-value') return figure.value <= goal.target;
  if (figure.ratio === undefined || !Number.isFinite(figure.ratio)) return false;
  return goal.kind === 'min-ratio' ? figure.ratio >= goal.target : figure.ratio <= goal.target;
}

export class Report {
  readonly #bench: string;
  readonly #figures: FigureResult[] = [];
  readonly #context: Record<string, unknown> = {};
  readonly #started = Date.now();

  constructor(bench: string) {
    this.#bench = bench;
    this.#context.loadAverageAtStart = machineLoad();
    this.info(`started ${new Date(this.#started).toISOString()}; load average ${machineLoad()}`);
  }

  info(line: string): void {
    process.stdout.write(`[${this.#bench}] ${line}\n`);
  }

  /** Extra data kept in the JSON (distributions, settings). */
  context(key: string, value: unknown): void {
    this.#context[key] = value;
  }

  figure(figure: Figure): FigureResult {
    const ratio = figure.ratio ?? (figure.ceiling !== undefined && figure.ceiling !== 0 ? figure.value / figure.ceiling : undefined);
    const withRatio: Figure = ratio === undefined ? figure : { ...figure, ratio };
    const met = evaluate(withRatio);
    const result: FigureResult = met === undefined ? withRatio : { ...withRatio, met };
    this.#figures.push(result);
    return result;
  }

  get figures(): readonly FigureResult[] {
    return this.#figures;
  }

  /** Prints every figure with its ratio as the last lines and writes `<out>/<bench>.json`. */
  finish(outDir: string | undefined): void {
    const seconds = ((Date.now() - this.#started) / 1000).toFixed(1);
    this.context('loadAverageAtEnd', machineLoad());
    process.stdout.write(`--- ${this.#bench}: figures beside their ceilings (${seconds} s; load average now ${machineLoad()}) ---\n`);
    for (const figure of this.#figures) process.stdout.write(ratioLine(figure) + '\n');
    if (outDir) {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(
        join(outDir, `${this.#bench}.json`),
        JSON.stringify({ bench: this.#bench, startedAt: new Date(this.#started).toISOString(), seconds: Number(seconds), figures: this.#figures, context: this.#context }, null, 2),
      );
    }
  }
}

export function ratioLine(figure: FigureResult): string {
  const value = figure.spread ? fmtSpread(figure.spread) : fmt(figure.value);
  const ceiling =
    figure.ceiling === undefined
      ? ''
      : ` / ${figure.ceilingSpread ? fmtSpread(figure.ceilingSpread) : fmt(figure.ceiling)} ${figure.ceilingLabel ?? 'ceiling'}`;
  const ratio = figure.ratio === undefined ? '' : ` = ratio ${figure.ratio.toFixed(2)}${figure.lowerIsBetter ? ' (lower is better)' : ''}`;
  const goal = figure.goal ? `  goal ${goalText(figure.goal, figure.unit)}: ${figure.met ? 'MET' : 'NOT MET'}` : '';
  return `RATIO ${figure.id}: ${value} ${figure.unit}${ceiling}${ratio}${goal}`;
}
