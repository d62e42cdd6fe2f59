// Collects the JSON every benchmark wrote to one output folder into a table (Markdown, also
// printed), with the figures that have goals last: `node dist/bench/summary.js <folder>`.
// bench/make-results-md.ts renders the committed runs under bench/results/ with the same table.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FigureResult, goalText, ratioLine } from './lib/report.js';
import { fmt, fmtSpread } from './lib/stats.js';

export type BenchFigure = FigureResult & { bench: string };

/** One benchmark's JSON file, as lib/report.ts writes it. */
export interface BenchJson {
  bench?: string;
  startedAt?: string;
  seconds?: number;
  figures?: FigureResult[];
  context?: { loadAverageAtStart?: string; loadAverageAtEnd?: string } & Record<string, unknown>;
}

const ORDER = ['model', 'ingest', 'shadow', 'quality', 'freshness', 'serving', 'redis-write', 'scale', 'profile', 'backfill', 'backfill-shards'];

/** The benchmark JSON files of one folder, in the summary's order, with their names. */
export function readBenchJsons(dir: string): { file: string; data: BenchJson }[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort((a, b) => (ORDER.indexOf(a.replace('.json', '')) + 1 || 99) - (ORDER.indexOf(b.replace('.json', '')) + 1 || 99));
  const found: { file: string; data: BenchJson }[] = [];
  for (const file of files) {
    try {
      const data = JSON.parse(readFileSync(join(dir, file), 'utf8')) as BenchJson;
      if (Array.isArray(data.figures)) found.push({ file, data });
    } catch {
      // not one of ours
    }
  }
  return found;
}

export function benchFigures(jsons: { file: string; data: BenchJson }[]): BenchFigure[] {
  return jsons.flatMap(({ file, data }) => (data.figures ?? []).map((figure) => ({ ...figure, bench: data.bench ?? file })));
}

const cell = (text: string) => text.replaceAll('|', '\\|');

/** The Markdown table of figures (and, if any, of the profile's shares). */
export function figureTable(all: BenchFigure[]): string[] {
  const lines = [
    '| figure | value | ceiling / baseline | ratio | goal | met? |',
    '|---|---|---|---|---|---|',
    ...all
      .filter((f) => !f.id.startsWith('profile.'))
      .map((f) =>
        [
          `\`${f.id}\` ${cell(f.label)}`,
          `${f.spread ? fmtSpread(f.spread) : fmt(f.value)} ${f.unit}`,
          f.ceiling === undefined ? '–' : `${f.ceilingSpread ? fmtSpread(f.ceilingSpread) : fmt(f.ceiling)} (${cell(f.ceilingLabel ?? '')})`,
          f.ratio === undefined ? '–' : `${f.ratio.toFixed(2)}${f.lowerIsBetter ? ' ↓' : ''}`,
          cell(goalText(f.goal, f.unit)),
          f.met === undefined ? '–' : f.met ? 'yes' : '**no**',
        ].join(' | '),
      )
      .map((row) => `| ${row} |`),
  ];
  const profile = all.filter((f) => f.id.startsWith('profile.'));
  if (profile.length > 0) {
    lines.push('', '| profile share of busy time | % |', '|---|---|', ...profile.map((f) => `| ${cell(f.label)} | ${f.value.toFixed(1)} |`));
  }
  return lines;
}

function main(dir: string): void {
  const all = benchFigures(readBenchJsons(dir));
  const lines = figureTable(all);
  writeFileSync(join(dir, 'summary.md'), lines.join('\n') + '\n');
  process.stdout.write(`\n=== summary (${dir}/summary.md) ===\n${lines.join('\n')}\n\n=== ratios to the ceilings measured in this run ===\n`);
  const withCeiling = all.filter((f) => f.ratio !== undefined);
  for (const figure of [...withCeiling.filter((f) => !f.goal), ...withCeiling.filter((f) => f.goal)]) process.stdout.write(ratioLine(figure) + '\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node dist/bench/summary.js <output folder of bench/run.sh>\n');
    process.exit(2);
  }
  main(dir);
}
