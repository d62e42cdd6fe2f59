// GPU inference (issue 17): ONNX Runtime alone on pre-built tensors, per execution provider
// (cpu, webgpu, cuda) and batch size, for the default (windowed) model and the stateful model's
// step graph, fp32 and, where an fp16 variant is given, fp16; beside PyTorch on the same device
// (bench/gpu_torch_baseline.py: the training code's module with the same weights).
//
// A provider that cannot start here is reported as skipped with the reason (the coded error the
// pool would give), never a crash; so the same command is a dry run on a machine without a GPU:
//   node dist/bench/gpu.bench.js --dry-run           (CI: test/bench/gpu-bench.test.ts)
//   bash bench/gpu.sh                                (packs for, and prints, the device run)
// Options: --providers cpu,webgpu,cuda  --batches 64,256,1024  --models DIR,DIR  --fp16 DIR,DIR
//   --time-steps 50,10 (windowed: model.bench's shapes, a full window and a typical one)
//   --step-events 8 (stateful: events per step)  --min-ms 1000  --python PY
//   --torch-devices cuda  --no-torch  --out DIR (default $TASTE_BENCH_OUT)
// Each GPU session is created, measured and released before the next: ORT's WebGPU provider is
// known to crash with two sessions at once in one process (../shared/gpu/README.md).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { TasteError } from '../common/errors.js';
import { MODEL_OUTPUT, STEP_CHECKPOINT_OUTPUT } from '../model/contract.js';
import { checkCudaInstalled, onnxruntimeLibraryDir, sessionLoadError } from '../model/execution-providers.js';
import { buildSequenceBatch, buildStepBatch } from '../model/features.js';
import { ExecutionProviders, type ExecutionProvider } from '../model/inference-protocol.js';
import { loadModelBundle, type ModelBundle } from '../model/model-bundle.js';
import { benchArgs, OUT_DIR, REPO_ROOT, numberArg, stringArg } from './lib/env.js';
import { feedsOf, stepFeedsOf } from './lib/ort.js';
import { Report } from './lib/report.js';
import { fmt, quantile, timeLoop } from './lib/stats.js';
import { syntheticWindows } from './lib/windows.js';

const args = benchArgs({
  'dry-run': { type: 'boolean' },
  providers: { type: 'string' },
  batches: { type: 'string' },
  models: { type: 'string' },
  fp16: { type: 'string' },
  'time-steps': { type: 'string' },
  'step-events': { type: 'string' },
  'min-ms': { type: 'string' },
  python: { type: 'string' },
  'torch-devices': { type: 'string' },
  'no-torch': { type: 'boolean' },
  out: { type: 'string' },
});
const dryRun = args.values['dry-run'] === true;
const list = (name: string, fallback: string) => stringArg(args, name, fallback).split(',').filter(Boolean);
const providers = list('providers', ExecutionProviders.join(',')) as ExecutionProvider[];
for (const provider of providers) if (!ExecutionProviders.includes(provider)) throw new Error(`--providers: unknown provider ${provider}`);
const batches = list('batches', dryRun ? '4' : '64,256,1024').map(Number);
const minMs = numberArg(args, 'min-ms', dryRun ? 20 : 1000);
const models = [
  ...list('models', `${REPO_ROOT}models/default,${REPO_ROOT}models/stateful`).map((dir) => ({ dir, precision: 'fp32' })),
  ...list('fp16', '').map((dir) => ({ dir, precision: 'fp16' })),
];
const python = stringArg(args, 'python', existsSync(`${REPO_ROOT}training/.venv/bin/python`) ? `${REPO_ROOT}training/.venv/bin/python` : 'python3');
// The dry run times PyTorch on the CPU too, so its code path runs here.
const torchDevices = stringArg(args, 'torch-devices', dryRun ? 'cuda,cpu' : 'cuda');
const outDir = stringArg(args, 'out', OUT_DIR ?? '');
/** The small batch every provider must reproduce (CPU provider's output) before it is timed. */
const REFERENCE_BATCH = 4;

/** One measured (or skipped) combination; the JSON's `context.rows`. */
export interface Row {
  model: string;
  kind: string;
  precision: string;
  provider: string;
  device?: string;
  /** Events per user: the window's length, or a step's events. */
  events?: number;
  batch?: number;
  status: 'ok' | 'skipped';
  reason?: string;
  usersPerS?: number;
  msPerRun?: number;
  /** Largest |output − the CPU provider's on the same model| on the reference batch (fp16 vs fp32: its MODEL_CARD). */
  maxAbsDiffVsCpu?: number;
}

const report = new Report('gpu');
report.info(`${dryRun ? 'DRY RUN (small sizes; nothing here is a figure): ' : ''}providers ${providers.join(',')}; batches ${batches.join(',')}; ≥${minMs} ms each; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'})`);
const rows: Row[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'taste-gpu-bench-'));

type Feeds = Record<string, ort.Tensor>;

/** Events per user in each measured shape: window lengths (windowed) or events per step (stateful); the first is the PyTorch baseline's. */
function shapesOf(bundle: ModelBundle): number[] {
  const { metadata } = bundle;
  const shapes = metadata.stateful ? list('step-events', '8') : list('time-steps', `${metadata.maxSeqLen},10`);
  const most = metadata.stateful ? metadata.stateful.maxStepEvents : metadata.maxSeqLen;
  return [...new Set(shapes.map((shape) => Math.min(Number(shape), most)))];
}

/** Feeds of `batch` users: windows of `events` events, or steps of `events` events from a small state. */
function feedsFor(bundle: ModelBundle, batch: number, events: number, seed: number): Feeds {
  const { metadata } = bundle;
  if (!metadata.stateful) return feedsOf(buildSequenceBatch(syntheticWindows(batch, events, metadata, seed), metadata.queryTokens));
  const stateDim = metadata.stateful.stateDim;
  const steps = syntheticWindows(batch, events, metadata, seed).map((window, user) => ({
    state: Float32Array.from({ length: stateDim }, (_, i) => 0.01 * Math.sin(user + i)),
    previousEventMs: undefined,
    events: window,
    checkpointAt: Math.max(0, window.length - 1),
  }));
  return stepFeedsOf(buildStepBatch(steps, metadata.queryTokens, stateDim));
}

function outputsOf(bundle: ModelBundle): string[] {
  return bundle.metadata.stateful ? [STEP_CHECKPOINT_OUTPUT, MODEL_OUTPUT] : [MODEL_OUTPUT];
}

async function embeddingOf(session: ort.InferenceSession, bundle: ModelBundle, feeds: Feeds): Promise<Float32Array> {
  const outputs = await session.run(feeds, outputsOf(bundle));
  return outputs[MODEL_OUTPUT]!.data as Float32Array;
}

/** A session on `provider`, or why there is none (the pool's coded error for the same failure). */
async function sessionOn(bundle: ModelBundle, provider: ExecutionProvider): Promise<ort.InferenceSession | string> {
  try {
    if (provider === 'cuda') await checkCudaInstalled(onnxruntimeLibraryDir());
    return await ort.InferenceSession.create(bundle.onnxPath, {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      ...(provider === 'cpu' ? { intraOpNumThreads: availableParallelism(), interOpNumThreads: 1 } : {}),
    });
  } catch (error) {
    if (error instanceof TasteError) return error.message;
    return sessionLoadError(provider, bundle.onnxPath, error instanceof Error ? error.message : String(error), onnxruntimeLibraryDir()).message;
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The reference batch and the CPU provider's output, as JSON for the PyTorch baseline. */
function writeReference(path: string, feeds: Feeds, output: Float32Array, dim: number): void {
  const asJson = Object.fromEntries(
    Object.entries(feeds).map(([name, tensor]) => [name, { type: tensor.type, dims: tensor.dims, data: Array.from(tensor.data as ArrayLike<number | bigint>, Number) }]),
  );
  writeFileSync(path, JSON.stringify({ feeds: asJson, output: { dims: [output.length / dim, dim], data: Array.from(output) } }));
}

async function measureProviders(bundle: ModelBundle, label: string, kind: string, precision: string, reference: Feeds, expected: Float32Array): Promise<void> {
  for (const provider of providers) {
    const session = await sessionOn(bundle, provider);
    if (typeof session === 'string') {
      rows.push({ model: label, kind, precision, provider, status: 'skipped', reason: session });
      report.info(`${label} ${precision} ${provider}: skipped: ${session}`);
      continue;
    }
    try {
      const diff = maxAbsDiff(await embeddingOf(session, bundle, reference), expected);
      for (const events of shapesOf(bundle)) {
        for (const batch of batches) {
          const feeds = feedsFor(bundle, batch, events, batch);
          // Warm-up runs compile the GPU providers' kernels and shaders for this shape.
          const { perRunMs } = await timeLoop(() => session.run(feeds, outputsOf(bundle)), { minMs, minRuns: 3, warmup: 3 });
          const ms = quantile(perRunMs, 0.5);
          rows.push({ model: label, kind, precision, provider, events, batch, status: 'ok', usersPerS: (batch * 1000) / ms, msPerRun: ms, maxAbsDiffVsCpu: diff });
          report.info(`${label} ${precision} ${provider} ${events} events b=${batch}: ${fmt((batch * 1000) / ms)} users/s, ${ms.toFixed(2)} ms/run; max |Δ| vs cpu ${diff.toExponential(1)}`);
        }
      }
    } finally {
      await session.release();
    }
  }
}

/** One line of bench/gpu_torch_baseline.py: the weight check, or a timing (or why there is none). */
interface TorchLine {
  status: 'weights' | 'ok' | 'skipped';
  reason?: string;
  device?: string;
  deviceName?: string;
  precision?: string;
  batch?: number;
  usersPerS?: number;
  msPerRun?: number;
  maxAbsDiffVsOrtCpu?: number;
  unmatchedWeights?: string[];
}

/** PyTorch on the same weights (bench/gpu_torch_baseline.py), its lines as rows. */
async function measureTorch(dir: string, label: string, kind: string, events: number, referencePath: string): Promise<void> {
  const script = `${REPO_ROOT}bench/gpu_torch_baseline.py`;
  const argv = [script, '--model', dir, '--reference', referencePath, '--batches', batches.join(','), '--min-ms', String(minMs), '--devices', torchDevices];
  const stdout = await new Promise<string | Error>((resolve) =>
    execFile(python, argv, { maxBuffer: 16 * 1024 * 1024 }, (error, out, err) => resolve(error ? new Error(`${python} ${script} failed: ${err.trim().split('\n').at(-1) ?? error.message}`) : out)),
  );
  if (stdout instanceof Error) {
    rows.push({ model: label, kind, precision: 'fp32', provider: 'pytorch', status: 'skipped', reason: stdout.message });
    report.info(`${label} pytorch: skipped: ${stdout.message}`);
    return;
  }
  for (const line of stdout.trim().split('\n').filter(Boolean)) {
    const entry = JSON.parse(line) as TorchLine;
    if (entry.status === 'weights') {
      report.info(`${label} pytorch: weights loaded from model.onnx; max |Δ| vs ORT cpu ${entry.maxAbsDiffVsOrtCpu?.toExponential(1)}; not from the graph: ${entry.unmatchedWeights?.join(', ') || 'none'}`);
      report.context(`torchWeights.${label}`, { maxAbsDiffVsOrtCpu: entry.maxAbsDiffVsOrtCpu, unmatchedWeights: entry.unmatchedWeights });
      continue;
    }
    const precision = entry.precision ?? 'fp32';
    const row: Row = { model: label, kind, precision, provider: 'pytorch', ...(entry.device ? { device: entry.device } : {}), status: entry.status === 'ok' ? 'ok' : 'skipped' };
    if (entry.reason) row.reason = entry.reason;
    if (entry.batch !== undefined) Object.assign(row, { events, batch: entry.batch, usersPerS: entry.usersPerS, msPerRun: entry.msPerRun });
    rows.push(row);
    report.info(`${label} ${precision} pytorch ${entry.device ?? ''}${row.batch === undefined ? '' : ` b=${row.batch}`}: ${row.status === 'ok' ? `${fmt(row.usersPerS!)} users/s` : `skipped: ${row.reason}`}`);
  }
}

/** Per model and precision: each GPU provider's best users/s against PyTorch CUDA fp32's best (goal ≥ 0.5×) and the CPU provider's. */
function figures(): void {
  const best = (filter: (row: Row) => boolean) =>
    rows.filter((row) => row.status === 'ok' && filter(row)).reduce<Row | undefined>((top, row) => (top && top.usersPerS! >= row.usersPerS! ? top : row), undefined);
  const groups = new Set(rows.filter((row) => row.events !== undefined).map((row) => `${row.model} ${row.precision} ${row.events}`));
  for (const group of groups) {
    const [label, precision, eventsText] = group.split(' ') as [string, string, string];
    const events = Number(eventsText);
    const same = (row: Row) => row.model === label && row.events === events;
    const torch = best((row) => same(row) && row.provider === 'pytorch' && row.device === 'cuda' && row.precision === 'fp32');
    const cpu = best((row) => same(row) && row.provider === 'cpu' && row.precision === 'fp32');
    for (const provider of ['webgpu', 'cuda']) {
      const top = best((row) => same(row) && row.precision === precision && row.provider === provider);
      if (!top) continue;
      const id = `gpu.${label}.${precision}.e${events}.${provider}`;
      const what = `${label} ${precision}, ${events} events/user, on ${provider} (best batch ${top.batch})`;
      if (torch) {
        report.figure({
          id: `${id}.vs_torch`,
          label: `${what} vs PyTorch CUDA fp32 (best batch ${torch.batch})`,
          unit: 'users/s',
          value: top.usersPerS!,
          ceiling: torch.usersPerS!,
          ceilingLabel: 'PyTorch CUDA fp32, same device, same weights',
          goal: { kind: 'min-ratio', target: 0.5 },
        });
      }
      if (cpu) report.figure({ id: `${id}.vs_cpu`, label: `${what} vs the CPU provider (best batch ${cpu.batch})`, unit: 'users/s', value: top.usersPerS!, ceiling: cpu.usersPerS!, ceilingLabel: 'CPU provider, all cores' });
    }
  }
}

try {
  for (const { dir, precision } of models) {
    const bundle = await loadModelBundle(dir);
    const kind = bundle.metadata.kind;
    // The version's prefix names the model: default-2026-11-26-a8bdcf02 → default.
    const label = bundle.metadata.modelVersion.split('-')[0]!;
    const firstShape = shapesOf(bundle)[0]!;
    const reference = feedsFor(bundle, REFERENCE_BATCH, firstShape, 99);
    const cpuSession = await ort.InferenceSession.create(bundle.onnxPath, { executionProviders: ['cpu'] });
    const expected = await embeddingOf(cpuSession, bundle, reference);
    await cpuSession.release();
    await measureProviders(bundle, label, kind, precision, reference, expected);
    if (args.values['no-torch'] === true || precision === 'fp16') continue; // the PyTorch run covers fp16 by autocast
    const referencePath = join(scratch, `${label}-${precision}.reference.json`);
    writeReference(referencePath, reference, expected, bundle.metadata.embeddingDim);
    await measureTorch(dir, label, kind, firstShape, referencePath);
  }
  figures();
  report.context('dryRun', dryRun);
  report.context('settings', { providers, batches, minMs });
  report.context('rows', rows);
} finally {
  rmSync(scratch, { recursive: true, force: true });
  report.finish(outDir || undefined);
}
