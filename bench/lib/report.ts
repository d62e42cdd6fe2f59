import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineLoad } from './cpu.js';
import { fmt, fmtSpread, quantile, type Spread } from './stats.js';

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

/**
 * A picture of what a benchmark measured, kept in its JSON: bench/make_figures.py draws each one
 * from the committed run files, so no plotted number is typed by hand. Three shapes cover the
 * benchmarks: lines (a cost or latency against a swept quantity), bars (a figure beside its
 * ceilings, each with its spread over repeats) and a histogram (latency distributions, pre-binned
 * so the JSON stays small).
 */
export type Plot = LinesPlot | BarsPlot | HistogramPlot;

interface PlotBase {
  /** File name of the PNG, e.g. `history-cost` → bench/figures/history-cost.png. */
  id: string;
  title: string;
  /** One line under the title: the settings that produced it. */
  caption?: string;
}

export interface LinesPlot extends PlotBase {
  kind: 'lines';
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** `low`/`high`: the spread over repeats at each x, drawn as a band. */
  lines: { label: string; x: number[]; y: number[]; low?: number[]; high?: number[] }[];
}

export interface BarsPlot extends PlotBase {
  kind: 'bars';
  yLabel: string;
  /** A log value axis, for ceilings many times the figure. */
  valueLog?: boolean;
  /** `ceiling`: a baseline measured beside the figure (drawn hatched), not taste itself. */
  bars: { label: string; value: number; low?: number; high?: number; ceiling?: boolean }[];
}

export interface HistogramPlot extends PlotBase {
  kind: 'histogram';
  xLabel: string;
  xLog?: boolean;
  /** Bin edges, one more than each group's counts. */
  edges: number[];
  groups: { label: string; counts: number[]; total: number; p50: number; p99: number }[];
}

/** `bins` log-spaced bins from `min` to `max`; values outside are counted in the first or last bin. */
export function logHistogram(groups: { label: string; values: readonly number[] }[], options: { min: number; max: number; bins: number }): Pick<HistogramPlot, 'edges' | 'groups'> {
  const { min, max, bins } = options;
  const ratio = Math.log(max / min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => Number((min * Math.exp(ratio * i)).toPrecision(4)));
  return {
    edges,
    groups: groups.map(({ label, values }) => {
      const counts = new Array<number>(bins).fill(0);
      for (const value of values) {
        const bin = value <= min ? 0 : Math.floor(Math.log(value / min) / ratio);
        counts[Math.min(bins - 1, Math.max(0, bin))]!++;
      }
      return { label, counts, total: values.length, p50: quantile(values, 0.5), p99: quantile(values, 0.99) };
    }),
  };
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
  readonly #plots: Plot[] = [];
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

  /** A picture for bench/make_figures.py, written into the JSON beside the figures. */
  plot(plot: Plot): void {
    if (this.#plots.some((other) => other.id === plot.id)) throw new Error(`plot ${plot.id} twice in ${this.#bench}`);
    this.#plots.push(plot);
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
        JSON.stringify({ bench: this.#bench, startedAt: new Date(this.#started).toISOString(), seconds: Number(seconds), figures: this.#figures, ...(this.#plots.length > 0 ? { plots: this.#plots } : {}), context: this.#context }, null, 2),
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
