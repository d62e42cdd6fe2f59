import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// What the alert and dashboard tests share: promtool (installed once by scripts/ensure-promtool.sh)
// and the rule file inside the PrometheusRule manifest.

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const MONITORING = join(ROOT, 'deploy/k8s/components/monitoring');
export const RULE_MANIFEST = join(MONITORING, 'prometheus-rule.yaml');

const run = promisify(execFile);

export interface Run {
  code: number;
  output: string;
}

export async function exec(file: string, args: string[], cwd = ROOT): Promise<Run> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, maxBuffer: 16 << 20 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string; message?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? failed.message ?? ''}` };
  }
}

let promtool: Promise<string> | undefined;

/** The promtool binary; the first call on a fresh machine builds it (minutes, see the script). */
export function ensurePromtool(): Promise<string> {
  promtool ??= exec('bash', [join(ROOT, 'scripts/ensure-promtool.sh')]).then(({ code, output }) => {
    const path = output.trim().split('\n').at(-1) ?? '';
    if (code !== 0 || !path.endsWith('/promtool')) throw new Error(`scripts/ensure-promtool.sh failed (${code}):\n${output}`);
    return path;
  });
  return promtool;
}

/**
 * The manifest's `spec` as a plain Prometheus rule file: the lines under `spec:`, two spaces less
 * indented. The manifest is written so that this holds (nothing after spec, spec indented by two);
 * promtool then parses the result, so a manifest that breaks the form fails loudly.
 */
export function ruleFileOf(manifest: string): string {
  const lines = manifest.split('\n');
  const start = lines.indexOf('spec:');
  if (start < 0) throw new Error('the PrometheusRule has no top-level `spec:` line');
  const body = lines.slice(start + 1);
  const stray = body.find((line) => line !== '' && !line.startsWith('  '));
  if (stray !== undefined) throw new Error(`a top-level line after spec: ${JSON.stringify(stray)}: keep spec last`);
  return body.map((line) => line.slice(2)).join('\n');
}

/** Writes the rule file into a new temporary folder and returns that folder. */
export function writeRuleFile(name = 'taste.rules.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'taste-rules-'));
  writeFileSync(join(dir, name), ruleFileOf(readFileSync(RULE_MANIFEST, 'utf8')));
  return dir;
}

/** Names of the alerting and recording rules, in manifest order (`- alert: X`, `- record: Y`). */
export function ruleNames(manifest: string, kind: 'alert' | 'record'): string[] {
  return [...manifest.matchAll(new RegExp(`^\\s*- ${kind}: (\\S+)\\s*$`, 'gm'))].map((match) => match[1]!);
}
