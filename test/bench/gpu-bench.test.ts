import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Row } from '../../bench/gpu.bench.js';

// The GPU benchmark's dry run (bench/gpu.sh --dry-run), as CI runs it on a machine that may have
// no GPU: every model and provider gets a row, the CPU provider is measured, a provider that
// cannot start is skipped with the reason instead of crashing the run, and the PyTorch baseline
// reproduces ONNX Runtime's output from the graph's weights.

const BENCH = fileURLToPath(new URL('../../bench/gpu.bench.js', import.meta.url));

interface Written {
  context: { dryRun: boolean; rows: Row[]; [key: string]: unknown };
}

function run(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [BENCH, ...args], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout })),
  );
}

test('the dry run reports every model and provider, measures the CPU provider and skips the unavailable ones with the reason', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'taste-gpu-bench-'));
  try {
    const started = Date.now();
    const { code, stdout } = await run(['--dry-run', '--batches', '2', '--out', out]);
    t.is(code, 0, stdout);
    t.true(Date.now() - started < 60_000, 'a dry run takes under a minute');
    const written = JSON.parse(readFileSync(join(out, 'gpu.json'), 'utf8')) as Written;
    t.true(written.context.dryRun);
    const rows = written.context.rows;
    for (const model of ['default', 'stateful']) {
      for (const provider of ['cpu', 'webgpu', 'cuda']) {
        const mine = rows.filter((row) => row.model === model && row.provider === provider);
        t.true(mine.length > 0, `${model} on ${provider} has a row`);
        for (const row of mine) {
          if (row.status === 'ok') {
            t.is(row.batch, 2);
            t.true(row.usersPerS! > 0);
            t.true(row.maxAbsDiffVsCpu! < 1e-3, `${model} on ${provider} agrees with the CPU provider`);
          } else {
            t.regex(row.reason ?? '', provider === 'cuda' ? /cuda execution provider/ : /webgpu execution provider/);
          }
        }
      }
      const cpu = rows.filter((row) => row.model === model && row.provider === 'cpu');
      t.true(cpu.length > 0 && cpu.every((row) => row.status === 'ok'), 'the CPU provider runs everywhere');
      t.is(cpu[0]?.kind, model === 'default' ? 'windowed' : 'stateful');
      // The default model at model.bench's shapes (a full window of 50 events, a typical 10); the step graph at 8 events a step.
      t.deepEqual(
        cpu.map((row) => row.events),
        model === 'default' ? [50, 10] : [8],
      );
      const torch = rows.filter((row) => row.model === model && row.provider === 'pytorch');
      t.true(torch.length > 0, `${model} has a PyTorch row`);
      for (const row of torch) t.true(row.status === 'ok' || (row.reason ?? '').length > 0);
      const weights = written.context[`torchWeights.${model}`] as { maxAbsDiffVsOrtCpu: number } | undefined;
      if (weights) t.true(weights.maxAbsDiffVsOrtCpu < 1e-4, `PyTorch with the graph's weights reproduces ${model}`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('an unknown provider is refused before anything runs', async (t) => {
  const { code } = await run(['--dry-run', '--providers', 'cpu,tpu', '--models', '']);
  t.not(code, 0);
});
