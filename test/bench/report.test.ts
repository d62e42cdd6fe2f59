import test from 'ava';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logHistogram, Report } from '../../bench/lib/report.js';

// What bench/make_figures.py draws comes from here: the histogram's bins and the plots in the JSON.

test('a log histogram counts each value in the bin whose edges hold it, values outside in the end bins', (t) => {
  // 1 to 1000 in 3 bins: [1, 10), [10, 100), [100, 1000]
  const { edges, groups } = logHistogram([{ label: 'ms', values: [0, 1, 5, 9.99, 10, 50, 100, 999, 5000] }], { min: 1, max: 1000, bins: 3 });
  t.deepEqual(edges, [1, 10, 100, 1000]);
  t.deepEqual(groups[0]!.counts, [4, 2, 3]);
  t.is(groups[0]!.total, 9);
  t.is(groups[0]!.p50, 10);
});

test('an empty group has zero counts and no quantiles', (t) => {
  const { groups } = logHistogram([{ label: 'none', values: [] }], { min: 1, max: 100, bins: 2 });
  t.deepEqual(groups[0]!.counts, [0, 0]);
  t.is(groups[0]!.total, 0);
});

test('plots go into the benchmark JSON beside its figures, and one id twice is refused', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'taste-report-'));
  const report = new Report('example');
  report.figure({ id: 'example.x', label: 'x', unit: 'ms', value: 2, ceiling: 1 });
  report.plot({ id: 'example', kind: 'bars', title: 'x against its ceiling', yLabel: 'ms', bars: [{ label: 'x', value: 2 }, { label: 'ceiling', value: 1, ceiling: true }] });
  t.throws(() => report.plot({ id: 'example', kind: 'bars', title: 'again', yLabel: 'ms', bars: [] }), { message: /plot example twice/ });
  report.finish(out);
  const written = JSON.parse(readFileSync(join(out, 'example.json'), 'utf8')) as { figures: unknown[]; plots: { id: string; bars: unknown[] }[] };
  t.is(written.figures.length, 1);
  t.deepEqual(written.plots.map((plot) => [plot.id, plot.bars.length]), [['example', 2]]);
});
