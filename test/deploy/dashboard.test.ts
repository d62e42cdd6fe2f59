import anyTest, { type TestFn } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendErasureRequests } from '../../consumers/erasure-requests.js';
import { createProducer } from '../../consumers/kafka.js';
import { createEmbeddingClient, getUserEmbedding, batchGetUserEmbeddings } from '../../serving/client.js';
import { eventually, KAFKA_BROKERS, REDIS_URL, unique } from '../helpers/environment.js';
import { play, sendPlays, testKafka } from '../helpers/pipeline.js';
import { freePort } from '../reliability/harness.js';
import { ensurePromtool, exec, MONITORING, ROOT, RULE_MANIFEST, ruleNames } from './prometheus.js';

// The Grafana dashboard (deploy/k8s/components/monitoring/dashboards/taste.json) against the real
// thing: every query parses as PromQL (promtool, each query a recording rule), and every metric it
// reads is one that a running `taste consume` or `taste serve` exposes on /metrics (or a recording
// rule of the PrometheusRule). A renamed metric or a typo breaks a panel silently in Grafana; here
// it fails.

interface Target {
  panel: string;
  refId: string;
  expr: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { refId: string; expr: string }[];
  datasource?: { uid?: string };
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: { query: string } | string }[] };
}

const dashboard = JSON.parse(readFileSync(join(MONITORING, 'dashboards/taste.json'), 'utf8')) as Dashboard;
const targets: Target[] = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map(({ refId, expr }) => ({ panel: `${panel.id} "${panel.title}"`, refId, expr })));
const variableQueries = dashboard.templating.list
  .filter((variable) => variable.type === 'query')
  .map((variable) => (typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '')));

/** What Grafana substitutes before it sends a query. */
function asPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$namespace', 'taste').replaceAll('$model_version', '.+');
}

/** Metric names a query selects: every selector here is written `name{...}`. */
function metricsOf(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)].map((match) => match[1]!);
}

/** Series names a /metrics page declares (# TYPE lines), histograms and summaries expanded. */
function exposedNames(page: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of page.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
    else names.add(name!);
  }
  return names;
}

/** Series names with at least one sample on the page. */
function sampledNames(page: string): Set<string> {
  return new Set([...page.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? \S+$/gm)].map((match) => match[1]!));
}

/** Series Prometheus itself writes for every scrape target, not any taste process. */
const PROMETHEUS_SERIES = ['up'];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a /metrics page, labels as a map: the exposition format does not fix their order. */
function samplesOf(page: string): Sample[] {
  const samples: Sample[] = [];
  for (const [, name, body, value] of page.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/gm)) {
    const labels: Record<string, string> = {};
    for (const [, key, text] of (body ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = text!;
    samples.push({ name: name!, labels, value: Number(value) });
  }
  return samples;
}

/** The first sample of that name whose labels include these (others may be there too). */
function find(samples: Sample[], name: string, labels: Record<string, string>): Sample | undefined {
  return samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
}

/** Its value, or 0 when there is no such sample. */
function count(samples: Sample[], name: string, labels: Record<string, string>): number {
  return find(samples, name, labels)?.value ?? 0;
}

interface Context {
  consumePage: string;
  servePage: string;
  children: ChildProcess[];
}
const test = anyTest as TestFn<Context>;

/** Starts `taste <args>` and resolves once its stderr matches `ready`, with what matched. */
function startTaste(t: { context: Context }, args: string[], ready: RegExp): Promise<RegExpMatchArray> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_REDIS_URL: REDIS_URL },
  });
  t.context.children.push(child);
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`taste ${args[0]} did not start in 60 s:\n${stderr.slice(-2000)}`)), 60_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = ready.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.on('exit', (code) => reject(new Error(`taste ${args[0]} exited with ${code}:\n${stderr.slice(-2000)}`)));
  });
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

test.before(async (t) => {
  t.timeout(1_800_000); // a cold promtool install (scripts/ensure-promtool.sh)
  t.context = { consumePage: '', servePage: '', children: [] };
  const promtool = ensurePromtool();

  const id = unique('dashboard');
  const topics = { plays: `${id}.plays`, searches: `${id}.searches`, deadLetter: `${id}.dlq`, erasures: `${id}.erasures` };
  const [consumeMetrics, serveMetrics] = [await freePort(), await freePort()];
  await startTaste(
    t,
    ['consume', '--metrics-port', String(consumeMetrics), '--plays-topic', topics.plays, '--searches-topic', topics.searches, '--dead-letter-topic', topics.deadLetter, '--erasures-topic', topics.erasures, '--group-id', id, '--key-prefix', id, '--intra-op-threads', '1'],
    /stream job started/,
  );
  const serving = await startTaste(t, ['serve', '--port', '0', '--metrics-port', String(serveMetrics), '--key-prefix', id], /"address":"[^"]*:(\d+)"[^\n]*"msg":"serving"/);
  await eventually(async () => ((await fetch(`http://127.0.0.1:${consumeMetrics}/readyz`)).status === 200 ? true : undefined), 'the consumer ready', 60_000);

  // Traffic, so that the labelled series exist: plays (applied, freshness, Redis, lag), one record
  // that is no PlayEvent (dead-lettered), and calls that answer OK, NOT_FOUND and INVALID_ARGUMENT.
  const producer = createProducer(testKafka());
  await producer.connect();
  const user = unique('listener');
  try {
    await sendPlays(producer, topics.plays, [play(user, 'taste:track:1', Date.now() - 2000), play(user, 'taste:track:2', Date.now() - 1000)]);
    await producer.send({ topic: topics.plays, acks: -1, messages: [{ key: user, value: Buffer.from('not a PlayEvent') }] });
  } finally {
    await producer.disconnect();
  }
  await eventually(async () => {
    const page = await scrape(consumeMetrics);
    return /^taste_events_applied_total\{[^}]*\} [1-9]/m.test(page) && /^taste_events_dead_lettered_total\{/m.test(page) ? page : undefined;
  }, 'the plays applied and the bad record dead-lettered', 60_000);
  // An erasure of another listener, then an event of theirs from before it (dropped by the tombstone).
  const erased = unique('erased');
  const eraser = createProducer(testKafka());
  await eraser.connect();
  try {
    await sendErasureRequests(eraser, topics.erasures, [{ userId: erased, requestTimeMs: Date.now(), requestId: 'dashboard-1' }]);
    await eventually(async () => (/^taste_users_erased_total(\{[^}]*\})? [1-9]/m.test(await scrape(consumeMetrics)) ? true : undefined), 'the erasure applied', 60_000);
    await sendPlays(eraser, topics.plays, [play(erased, 'taste:track:3', Date.now() - 60_000)]);
  } finally {
    await eraser.disconnect();
  }
  t.context.consumePage = await eventually(async () => {
    const page = await scrape(consumeMetrics);
    return /^taste_tombstone_hits_total\{[^}]*\} [1-9]/m.test(page) ? page : undefined;
  }, 'the erased listener\'s old event dropped', 60_000);

  const client = createEmbeddingClient(`127.0.0.1:${serving[1]}`);
  try {
    await eventually(() => getUserEmbedding(client, { userId: user }).then(() => true, () => undefined), 'the embedding served');
    await getUserEmbedding(client, { userId: unique('nobody') }).catch(() => undefined);
    await getUserEmbedding(client, { userId: 'bad{id}' }).catch(() => undefined);
    await getUserEmbedding(client, { userId: user, modelVersion: 'not-a-served-version' }).catch(() => undefined);
    await batchGetUserEmbeddings(client, { userIds: [user] });
  } finally {
    client.close();
  }
  t.context.servePage = await scrape(serveMetrics);
  await promtool;
});

test.after.always((t) => {
  for (const child of t.context.children ?? []) child.kill('SIGTERM');
});

test('the dashboard has panels with queries, each panel id once', (t) => {
  t.is(dashboard.uid, 'taste-pipeline');
  t.true(targets.length >= 20, `${targets.length} queries`);
  const ids = dashboard.panels.map((panel) => panel.id);
  t.deepEqual(ids, [...new Set(ids)]);
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    t.true((panel.targets ?? []).length > 0, `panel ${panel.title} has queries`);
    t.is(panel.datasource?.uid, '${datasource}', `panel ${panel.title} uses the data source variable`);
  }
});

test('every query parses as PromQL (promtool check rules, each query a recording rule)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'taste-dashboard-'));
  const rules = targets.map(({ expr }, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(asPromql(expr))}`);
  writeFileSync(join(dir, 'dashboard.rules.yaml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
  const { code, output } = await exec(await ensurePromtool(), ['check', 'rules', join(dir, 'dashboard.rules.yaml')]);
  // promtool names the failing rule by its index: say which panel it is.
  const named = output.replace(/dashboard:query_(\d+)/g, (whole, i: string) => `${whole} (panel ${targets[Number(i)]!.panel}, ${targets[Number(i)]!.refId})`);
  t.is(code, 0, named);
  t.regex(output, new RegExp(`SUCCESS: ${targets.length} rules found`), named);
});

test('every metric the dashboard reads is on the /metrics of a running taste consume or taste serve', (t) => {
  const { consumePage, servePage } = t.context;
  const exposed = new Set([...exposedNames(consumePage), ...exposedNames(servePage), ...ruleNames(readFileSync(RULE_MANIFEST, 'utf8'), 'record'), ...PROMETHEUS_SERIES]);
  t.true(exposed.has('taste_freshness_seconds_bucket') && exposed.has('taste_grpc_seconds_bucket'), 'both pages were scraped');
  const missing: string[] = [];
  for (const { panel, refId, expr } of targets) {
    const names = metricsOf(expr);
    t.true(names.length > 0, `panel ${panel} ${refId} selects a metric by name: ${expr}`);
    for (const name of names) if (!exposed.has(name)) missing.push(`${name} (panel ${panel} ${refId})`);
  }
  for (const query of variableQueries) {
    const name = /label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(query)?.[1];
    t.truthy(name, `variable query ${query}`);
    if (name && !exposed.has(name)) missing.push(`${name} (variable query)`);
  }
  t.deepEqual(missing, [], 'metrics no taste process exposes');
  // Labelled series appear with their first sample: say which the traffic here did not reach.
  const sampled = new Set([...sampledNames(consumePage), ...sampledNames(servePage)]);
  const unsampled = [...new Set(targets.flatMap(({ expr }) => metricsOf(expr)))].filter((name) => !name.includes(':') && !sampled.has(name));
  t.log(`declared but without samples in this run (no such event happened): ${unsampled.join(', ') || 'none'}`);
});

test('the metrics the dashboard groups by carry the labels it groups by, the model version among them', (t) => {
  const serve = samplesOf(t.context.servePage);
  const consume = samplesOf(t.context.consumePage);
  const version = find(serve, 'taste_model_info', { model_kind: 'windowed' })?.labels['model_version'];
  t.truthy(version, 'taste serve names the model it serves');
  const model_version = version!;
  t.true(count(serve, 'taste_grpc_requests_total', { method: 'GetUserEmbedding', code: 'OK', model_version }) >= 1);
  t.true(count(serve, 'taste_grpc_requests_total', { method: 'GetUserEmbedding', code: 'NOT_FOUND', model_version }) >= 1);
  // A version nobody serves is counted under one label, whatever the client sent.
  t.is(count(serve, 'taste_grpc_requests_total', { method: 'GetUserEmbedding', code: 'NOT_FOUND', model_version: 'unserved' }), 1);
  t.notRegex(t.context.servePage, /not-a-served-version/);
  t.true(count(serve, 'taste_grpc_seconds_bucket', { le: '0.1', method: 'GetUserEmbedding', model_version }) >= 1);
  t.is(count(serve, 'taste_ready', {}), 1);
  // The consumer runs one model: every series it exports carries that version.
  t.is(count(consume, 'taste_model_info', { model_version, model_kind: 'windowed' }), 1);
  const unlabelled = consume.filter((sample) => sample.name.startsWith('taste_') && sample.labels['model_version'] !== model_version);
  t.deepEqual(unlabelled.map((sample) => sample.name), [], 'consumer series without its model_version');
  t.is(count(consume, 'taste_ready', { model_version }), 1);
  t.is(count(consume, 'taste_events_dead_lettered_total', { reason: 'UNDECODABLE', model_version }), 1);
  const lag = find(consume, 'taste_consumer_lag', { model_version });
  t.truthy(lag?.labels['topic'] && lag.labels['partition'], 'lag per topic and partition');
  // The freshness SLO's rules read the le="1" bucket: the bound must stay one of the buckets.
  t.truthy(find(consume, 'taste_freshness_seconds_bucket', { le: '1', model_version }));
  t.true(count(consume, 'taste_freshness_seconds_count', { model_version }) >= 1);
  t.true(count(consume, 'taste_redis_seconds_count', { operation: 'write-state', model_version }) >= 1);
});
