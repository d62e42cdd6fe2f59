import test from 'ava';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePromtool, exec, MONITORING, ROOT, RULE_MANIFEST, ruleNames, writeRuleFile } from './prometheus.js';

// The alerts of deploy/k8s/components/monitoring/prometheus-rule.yaml, checked by Prometheus' own
// promtool: the rules parse and lint clean, and `promtool test rules` replays the hand-written
// series of tests/*.yaml and compares the alerts (labels and rendered annotations) with the ones
// written there. The rule file promtool reads is the manifest's `spec`, so there is one source.

const TESTS = join(MONITORING, 'tests');
const manifest = readFileSync(RULE_MANIFEST, 'utf8');
const alerts = ruleNames(manifest, 'alert');
const testFiles = readdirSync(TESTS).filter((name) => name.endsWith('.yaml')).sort();
const unitTests = testFiles.map((name) => readFileSync(join(TESTS, name), 'utf8')).join('\n');

test.before(async (t) => {
  // A cold install builds promtool from source: minutes on a quiet machine, more on a busy one.
  t.timeout(1_800_000);
  await ensurePromtool();
});

test('the rule file parses and passes promtool check rules (lint included)', async (t) => {
  const dir = writeRuleFile();
  const { code, output } = await exec(await ensurePromtool(), ['check', 'rules', '--lint=all', '--lint-fatal', join(dir, 'taste.rules.yaml')]);
  t.is(code, 0, output);
  t.regex(output, new RegExp(`SUCCESS: ${alerts.length + ruleNames(manifest, 'record').length} rules found`), output);
});

test('promtool test rules: every test file passes (input series → expected alerts)', async (t) => {
  const dir = writeRuleFile();
  for (const name of testFiles) copyFileSync(join(TESTS, name), join(dir, name));
  const { code, output } = await exec(await ensurePromtool(), ['test', 'rules', ...testFiles], dir);
  t.is(code, 0, output);
  for (const name of testFiles) t.regex(output, new RegExp(`Processing test file: ${name.replace('.', '\\.')}\\s+SUCCESS`), output);
});

test('every alert has a unit test where it fires and one where it stays quiet', (t) => {
  t.true(alerts.length >= 15, `alerts found: ${alerts.join(', ')}`);
  const firing = new Set([...unitTests.matchAll(/alertname: (\S+)\s*\n\s*exp_alerts:\s*\n\s*- exp_labels/g)].map((match) => match[1]));
  const quiet = new Set([...unitTests.matchAll(/alertname: (\S+)\s*\n\s*exp_alerts: \[\]/g)].map((match) => match[1]));
  t.deepEqual(alerts.filter((alert) => !firing.has(alert)), [], 'alerts never expected to fire');
  t.deepEqual(alerts.filter((alert) => !quiet.has(alert)), [], 'alerts never expected to stay quiet');
  for (const name of testFiles) t.regex(readFileSync(join(TESTS, name), 'utf8'), /^rule_files: \[taste\.rules\.yaml\]$/m, name);
});

/** GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces to -. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

test('every alert links to its own section of docs/runbook.md, which says what to do', (t) => {
  const runbook = readFileSync(join(ROOT, 'docs/runbook.md'), 'utf8');
  const sections = new Map<string, string>();
  const parts = runbook.split(/^(#{2,4} .*)$/m);
  for (let i = 1; i < parts.length; i += 2) sections.set(anchor(parts[i]!.replace(/^#+ /, '')), parts[i + 1] ?? '');
  const links = [...manifest.matchAll(/- alert: (\S+)[\s\S]*?runbook_url: (\S+)/g)].map((match) => [match[1]!, match[2]!] as const);
  t.deepEqual(links.map(([alert]) => alert), alerts, 'one runbook_url per alert, in its own rule');
  for (const [alert, url] of links) {
    const target = url.split('#')[1] ?? '';
    t.true(url.includes('docs/runbook.md#'), `${alert}: ${url}`);
    t.is(target, alert.toLowerCase(), `${alert} links to the section named after it`);
    const section = sections.get(target);
    t.truthy(section, `${alert}: docs/runbook.md has no heading for #${target}`);
    t.true((section ?? '').trim().length > 200, `${alert}: its runbook section says what to do`);
  }
});
