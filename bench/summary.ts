// Collects the JSON every benchmark wrote to one output folder into a table (Markdown, also
// printed), with the figures that have goals last: `node dist/bench/summary.js <folder>`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type FigureResult, goalText, ratioLine } from './lib/report.js';
import { fmt, fmtSpread } from './lib/stats.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node dist/bench/summary.js <output folder of bench/run.sh>');
const order = ['model', 'ingest', 'freshness', 'serving', 'redis-write', 'scale', 'profile', 'backfill'];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort((a, b) => (order.indexOf(a.replace('.json', '')) + 1 || 99) - (order.indexOf(b.replace('.json', '')) + 1 || 99));
const all: (FigureResult & { bench: string })[] = [];
for (const file of files) {
  try {
    const data = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { bench?: string; figures?: FigureResult[] };
    for (const figure of data.figures ?? []) all.push({ ...figure, bench: data.bench ?? file });
  } catch {
    // not one of ours
  }
}
const cell = (text: string) => text.replaceAll('|', '\\|');
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
writeFileSync(join(dir, 'summary.md'), lines.join('\n') + '\n');
process.stdout.write(`\n=== summary (${dir}/summary.md) ===\n${lines.join('\n')}\n\n=== ratios to the ceilings measured in this run ===\n`);
const withCeiling = all.filter((f) => f.ratio !== undefined);
for (const figure of [...withCeiling.filter((f) => !f.goal), ...withCeiling.filter((f) => f.goal)]) process.stdout.write(ratioLine(figure) + '\n');
