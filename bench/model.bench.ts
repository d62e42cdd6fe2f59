// Model ceiling: onnxruntime-node alone on pre-built tensors (same provider and threads as the
// pipeline's InferencePool), beside the InferencePool (tensor building + postMessage/transfer +
// worker thread) on the same windows. Also: the cost of building the int64 tensors (BigInt per
// cell) beside an Int32-view builder, and the worker/thread split on this machine.
import { availableParallelism } from 'node:os';
import { MODEL_OUTPUT } from '../model/contract.js';
import { buildSequenceBatch } from '../model/features.js';
import * as lib from './lib/ort.js';
import { feedsOf } from './lib/ort.js';
import { InferencePool } from '../model/inference-pool.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { buildSequenceBatchBigInt, sameBatch } from './lib/batch-alternatives.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, stringArg } from './lib/env.js';
import { Report } from './lib/report.js';
import { fmt, pairedLoop, quantile, spread } from './lib/stats.js';
import { syntheticWindows } from './lib/windows.js';

const args = benchArgs({ 'typical-t': { type: 'string' }, 'min-ms': { type: 'string' }, 'fp16-model': { type: 'string' }, 'baseline-model': { type: 'string' } });
const report = new Report('model');
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const Q = metadata.queryTokens;
// ORT on every core here (the pool defaults to (cores - 1) / workers threads with spinning off;
// ingest.bench measures its ceiling with exactly those settings).
const threads = Math.max(1, Math.floor(availableParallelism() / 1));
const minMs = numberArg(args, 'min-ms', args.long ? 2000 : 400);
const typicalT = numberArg(args, 'typical-t', 10);
const batchSizes = [1, 8, 32, 128, 256];
const timeSteps = [...new Set([metadata.maxSeqLen, typicalT])];
report.info(`model ${metadata.modelVersion}: D=${metadata.embeddingDim} L=${metadata.maxSeqLen} Q=${Q}; cpu provider, ${threads} intra-op threads, ${availableParallelism()} cores; ${args.repeats} repeats of ≥${minMs} ms`);

const ortSession = (intra: number, spin = true) => lib.ortSession(bundle, intra, spin);

const session = await ortSession(threads);
const pool = await InferencePool.start({ bundle, workers: 1, intraOpThreads: threads });
const rows: string[] = [];
try {
  for (const T of timeSteps) {
    for (const b of batchSizes) {
      const windows = syntheticWindows(b, T, metadata, b * 1000 + T);
      const feeds = feedsOf(buildSequenceBatch(windows, Q));
      const direct: number[] = [];
      const pooled: number[] = [];
      // Call by call in turn, so the machine's noise hits both sides alike; users/s from the
      // median call of each repeat (robust to another tenant's bursts).
      for (let r = 0; r < args.repeats; r++) {
        const [d, p] = await pairedLoop([() => session.run(feeds, [MODEL_OUTPUT]), () => pool.embed(windows)], { minMs, blockMs: minMs / 4, minRounds: 2 });
        direct.push((b * 1000) / quantile(d!, 0.5));
        pooled.push((b * 1000) / quantile(p!, 0.5));
      }
      const ds = spread(direct);
      const ps = spread(pooled);
      rows.push(`T=${T} b=${b}: ort ${fmt(ds.median)} users/s (${fmt(ds.min)}–${fmt(ds.max)}), pool ${fmt(ps.median)} users/s (${fmt(ps.min)}–${fmt(ps.max)}), ${(1000 * b / ds.median).toFixed(2)} ms/run`);
      report.info(rows[rows.length - 1]!);
      report.figure({
        id: `model.pool.T${T}.b${b}`,
        label: `InferencePool users/s, T=${T}, batch ${b}`,
        unit: 'users/s',
        value: ps.median,
        spread: ps,
        ceiling: ds.median,
        ceilingSpread: ds,
        ceilingLabel: 'ORT alone (pre-built tensors)',
        note: 'ratio = 1 − pool overhead (tensor building, postMessage/transfer, worker hop)',
      });
      report.context(`ortUsersPerS.T${T}.b${b}`, ds);
    }
  }

  // Where the pool's overhead goes: building int64 tensors (main thread, per call).
  for (const b of [32, 256]) {
    const T = metadata.maxSeqLen;
    const windows = syntheticWindows(b, T, metadata, 7);
    if (!sameBatch(buildSequenceBatch(windows, Q), buildSequenceBatchBigInt(windows, Q))) {
      throw new Error('buildSequenceBatch (Int32 view) differs from the BigInt baseline: the tensors changed');
    }
    const big: number[] = [];
    const i32: number[] = [];
    for (let r = 0; r < args.repeats; r++) {
      const [a, c] = await pairedLoop([() => buildSequenceBatchBigInt(windows, Q), () => buildSequenceBatch(windows, Q)], {
        minMs: minMs / 2,
        minRounds: 20,
        warmupRounds: 10,
      });
      big.push((quantile(a!, 0.5) * 1000) / b);
      i32.push((quantile(c!, 0.5) * 1000) / b);
    }
    const bs = spread(big);
    const is = spread(i32);
    const ortUs = 1e6 / (report.figures.find((f) => f.id === `model.pool.T${T}.b${b}`)?.ceiling ?? Number.NaN);
    report.info(`tensor building T=${T} b=${b}: BigInt ${bs.median.toFixed(2)} µs/user, Int32 view ${is.median.toFixed(2)} µs/user (ORT run ${ortUs.toFixed(1)} µs/user)`);
    report.figure({
      id: `model.build.int32_vs_bigint.b${b}`,
      label: `tensor building, Int32 view vs BigInt per cell (T=${T}, batch ${b})`,
      unit: 'µs/user',
      value: is.median,
      spread: is,
      ceiling: bs.median,
      ceilingSpread: bs,
      ceilingLabel: 'the first buildSequenceBatch (a BigInt per cell)',
      lowerIsBetter: true,
      note: `ORT run costs ${ortUs.toFixed(1)} µs/user at this batch`,
    });
  }

  // Intra-op threads on this machine: the pool's default (cores / workers) beside 1 thread, and
  // beside the default with ORT's spin-waiting off. ORT alone, pre-built tensors, T=L.
  const T = metadata.maxSeqLen;
  if (threads > 1) {
    const variants = [
      { key: 'default', label: `${threads} threads, spinning on`, session: session },
      { key: 'intra1', label: '1 thread', session: await ortSession(1) },
      { key: 'nospin', label: `${threads} threads, spinning off`, session: await ortSession(threads, false) },
    ];
    try {
      for (const b of [32, 256]) {
        const feeds = feedsOf(buildSequenceBatch(syntheticWindows(b, T, metadata, 13), Q));
        const results: Record<string, number[]> = {};
        for (let r = 0; r < args.repeats; r++) {
          const times = await pairedLoop(variants.map((v) => () => v.session.run(feeds, [MODEL_OUTPUT])), { minMs: 1.5 * minMs, blockMs: minMs / 4, minRounds: 2 });
          variants.forEach((v, i) => (results[v.key] ??= []).push((b * 1000) / quantile(times[i]!, 0.5)));
        }
        const base = spread(results.default!);
        report.info(`ORT threads, T=${T} b=${b}: ${variants.map((v) => `${v.label} ${fmt(spread(results[v.key]!).median)}`).join(', ')} users/s`);
        for (const v of variants.slice(1)) {
          const s = spread(results[v.key]!);
          report.figure({
            id: `model.ort.${v.key}.b${b}`,
            label: `ORT alone with ${v.label} vs ${threads} threads spinning, T=${T}, batch ${b}`,
            unit: 'users/s',
            value: s.median,
            spread: s,
            ceiling: base.median,
            ceilingSpread: base,
            ceilingLabel: `ORT, ${threads} threads, spinning on`,
          });
        }
      }
    } finally {
      for (const v of variants.slice(1)) await v.session.release();
    }
  }

  // Worker/thread split: the stream job runs up to partitionsConsumedConcurrently (2) embeds at once.
  for (const b of [32, 256]) {
    const windows = syntheticWindows(b, T, metadata, 11);
    const splits = [
      { workers: 1, intra: threads },
      { workers: 2, intra: Math.max(1, Math.floor(threads / 2)) },
    ];
    const results: Record<string, number[]> = {};
    const pools = await Promise.all(splits.map((s) => InferencePool.start({ bundle, workers: s.workers, intraOpThreads: s.intra })));
    try {
      for (let r = 0; r < args.repeats; r++) {
        const times = await pairedLoop(
          pools.map((p) => () => Promise.all([p.embed(windows), p.embed(windows)])),
          { minMs: 1.5 * minMs, blockMs: minMs / 4, minRounds: 2 },
        );
        splits.forEach((s, i) => (results[`${s.workers}x${s.intra}`] ??= []).push((2 * b * 1000) / quantile(times[i]!, 0.5)));
      }
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
    const [one, two] = splits.map((s) => spread(results[`${s.workers}x${s.intra}`]!));
    report.info(`2 concurrent embeds, T=${T} b=${b}: 1 worker × ${splits[0]!.intra} threads ${fmt(one!.median)} users/s, 2 workers × ${splits[1]!.intra} thread ${fmt(two!.median)} users/s`);
    report.figure({
      id: `model.workers2.b${b}`,
      label: `pool with 2 workers × ${splits[1]!.intra} thread vs 1 worker × ${splits[0]!.intra} threads, 2 concurrent embeds, T=${T}, batch ${b}`,
      unit: 'users/s',
      value: two!.median,
      spread: two!,
      ceiling: one!.median,
      ceilingSpread: one!,
      ceilingLabel: 'default pool (1 worker)',
    });
  }

  /** ORT alone on `otherDir`'s model beside the benchmarked one, same feeds and threads, block by block. */
  async function compareWith(otherDir: string, figure: (t: number, b: number, otherVersion: string) => { id: string; label: string; ceilingLabel: string; note: string }, swap: boolean): Promise<void> {
    const otherBundle = await loadModelBundle(otherDir);
    const otherSession = await lib.ortSession(otherBundle, threads);
    try {
      for (const [t, b] of [[T, 256], [typicalT, 32]] as const) {
        const feeds = feedsOf(buildSequenceBatch(syntheticWindows(b, t, metadata, 17), Q));
        const ours: number[] = [];
        const theirs: number[] = [];
        for (let r = 0; r < args.repeats; r++) {
          const [a, c] = await pairedLoop([() => session.run(feeds, [MODEL_OUTPUT]), () => otherSession.run(feeds, [MODEL_OUTPUT])], { minMs, blockMs: minMs / 4, minRounds: 2 });
          ours.push((b * 1000) / quantile(a!, 0.5));
          theirs.push((b * 1000) / quantile(c!, 0.5));
        }
        // fp16: the other model is the figure, ours the ceiling; an older export: the other way round.
        const [value, ceiling] = swap ? [spread(ours), spread(theirs)] : [spread(theirs), spread(ours)];
        const { id, label, ceilingLabel, note } = figure(t, b, otherBundle.metadata.modelVersion);
        report.info(`${id}: ${fmt(value.median)} vs ${fmt(ceiling.median)} users/s`);
        report.figure({ id, label, unit: 'users/s', value: value.median, spread: value, ceiling: ceiling.median, ceilingSpread: ceiling, ceilingLabel, note });
      }
    } finally {
      await otherSession.release();
    }
  }

  // fp16 variant (python -m taste_training.fp16) beside its float32 model: ORT alone, same threads.
  const fp16Dir = stringArg(args, 'fp16-model', '');
  if (fp16Dir !== '') {
    await compareWith(
      fp16Dir,
      (t, b, version) => ({
        id: `model.fp16.T${t}.b${b}`,
        label: `ORT alone, fp16 variant (${version}) vs float32, cpu provider, T=${t}, batch ${b}`,
        ceilingLabel: 'the float32 model',
        note: 'fp16 targets GPU providers; the CPU provider has few fp16 kernels',
      }),
      false,
    );
  }
  // The same weights exported by an earlier graph (e.g. `git show REV:models/default/model.onnx`
  // beside the same items.tsv and item_embeddings.f32): what a graph change bought.
  const baselineDir = stringArg(args, 'baseline-model', '');
  if (baselineDir !== '') {
    await compareWith(
      baselineDir,
      (t, b) => ({
        id: `model.graph_vs_baseline.T${t}.b${b}`,
        label: `ORT alone, this model's graph vs the same weights in the baseline export (${baselineDir}), T=${t}, batch ${b}`,
        ceilingLabel: 'baseline export',
        note: 'same weights: outputs are compared separately',
      }),
      true,
    );
  }
} finally {
  await pool.close();
  await session.release();
}
report.context('rows', rows);
report.finish(OUT_DIR);
