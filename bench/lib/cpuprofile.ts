import { readFileSync } from 'node:fs';

/** The parts of V8's .cpuprofile format that self-time accounting needs. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionTime {
  name: string;
  where: string;
  category: string;
  selfMs: number;
  /** The callers this self time came through, most first (native functions are only explained by them). */
  callers: string[];
  /** Share of the thread's busy (non-idle) time. */
  share: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  busyMs: number;
  idleMs: number;
  byCategory: { category: string; selfMs: number; share: number }[];
  top: FunctionTime[];
}

/** What a sample's code belongs to, by where it lives: the ingest path's usual suspects. */
export function categorize(functionName: string, url: string): string {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'V8/native (program)';
  // protobufjs generates its codecs with new Function: no url, names like Type$decode.
  if (/\$(decode|encode|fromObject|toObject|verify)$/.test(functionName)) return 'protobufjs';
  if (/^(writeUtf8String|writeBuffer|writev|writeLatin1String|writeAsciiString|onStreamRead)$/.test(functionName)) return 'socket I/O syscalls';
  if (url.startsWith('node:internal/http2')) return 'http2 (gRPC transport, node core)';
  if (url.includes('/node_modules/kafkajs/')) return 'kafkajs';
  if (/\/node_modules\/(ioredis|redis-parser|@ioredis|denque|cluster-key-slot|redis-errors)\//.test(url)) return 'ioredis';
  if (/\/node_modules\/(protobufjs|@protobufjs|long)\//.test(url)) return 'protobufjs';
  if (url.includes('/node_modules/onnxruntime')) return 'onnxruntime (JS + native run)';
  if (/\/node_modules\/@grpc\//.test(url)) return 'grpc-js';
  if (url.includes('/node_modules/')) return 'other node_modules';
  if (/\/model\/features\.js$/.test(url)) {
    if (functionName === 'buildSequenceBatch' || functionName === 'timeBucket' || functionName === 'bitLength' || functionName === '') return 'tensor building (model/features)';
    return 'featurize/merge (events/featurization, model/features)';
  }
  if (/\/events\/featurization\.js$/.test(url)) return 'featurize/merge (events/featurization, model/features)';
  if (/\/model\/inference-(pool|worker)\.js$/.test(url)) return 'inference pool/worker JS';
  if (/\/featurestore\//.test(url)) return 'feature store codecs (featurestore/)';
  if (/\/events\//.test(url)) return 'decode/validate (events/)';
  if (/\/proto\//.test(url)) return 'protobufjs';
  if (/\/updater\//.test(url)) return 'updater';
  if (/\/consumers\//.test(url)) return 'stream consumer';
  if (/\/serving\//.test(url)) return 'serving';
  if (/\/bench\//.test(url)) return 'bench harness';
  if (url.startsWith('node:internal/worker') || /MessagePort|postMessage/.test(functionName)) return 'worker messaging (postMessage/transfer)';
  if (url.startsWith('node:') || url === '') return functionName === 'run' ? 'onnxruntime (JS + native run)' : 'node core/native';
  return 'other';
}

/**
 * Self time per function and per category. `window` (µs, the profile's clock, which is
 * process.hrtime's on Linux) keeps only samples inside it, e.g. without start-up and shutdown.
 */
export function summarizeProfile(file: string, topN = 15, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const selfById = new Map<number, number>();
  let t = profile.startTime;
  let firstUs = Number.NaN;
  let lastUs = Number.NaN;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window.fromUs || t > window.toUs)) return;
    if (Number.isNaN(firstUs)) firstUs = t;
    lastUs = t;
    selfById.set(id, (selfById.get(id) ?? 0) + delta / 1000);
  });
  const label = (id: number | undefined): string => {
    const frame = id === undefined ? undefined : byId.get(id)?.callFrame;
    if (!frame) return '(root)';
    const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${frame.lineNumber + 1}` : '(native)';
    return `${frame.functionName || '(anonymous)'} ${where}`;
  };
  const callerMs = new Map<string, Map<string, number>>();
  const byFunction = new Map<string, { name: string; where: string; category: string; selfMs: number }>();
  const byCategory = new Map<string, number>();
  let idleMs = 0;
  let totalMs = 0;
  for (const [id, ms] of selfById) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalMs += ms;
    const category = categorize(functionName, url);
    if (category === 'idle') {
      idleMs += ms;
      continue;
    }
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '(native)';
    const key = `${functionName}@${where}`;
    const entry = byFunction.get(key) ?? { name: functionName || '(anonymous)', where, category, selfMs: 0 };
    entry.selfMs += ms;
    byFunction.set(key, entry);
    // The nearest JS caller (skipping other native frames) explains a native function's time.
    let parent = parentOf.get(id);
    while (parent !== undefined && !byId.get(parent)?.callFrame.url && byId.get(parent)?.callFrame.functionName !== '(root)') parent = parentOf.get(parent);
    const callers = callerMs.get(key) ?? new Map<string, number>();
    callers.set(label(parent), (callers.get(label(parent)) ?? 0) + ms);
    callerMs.set(key, callers);
    byCategory.set(category, (byCategory.get(category) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;
  return {
    file,
    wallMs: window ? (lastUs - firstUs) / 1000 : (profile.endTime - profile.startTime) / 1000,
    busyMs,
    idleMs,
    byCategory: [...byCategory].map(([category, selfMs]) => ({ category, selfMs, share: selfMs / busyMs })).sort((a, b) => b.selfMs - a.selfMs),
    top: [...byFunction.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, topN)
      .map((entry) => ({
        ...entry,
        share: entry.selfMs / busyMs,
        callers: [...(callerMs.get(`${entry.name === '(anonymous)' ? '' : entry.name}@${entry.where}`) ?? callerMs.get(`${entry.name}@${entry.where}`) ?? new Map<string, number>())]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 2)
          .map(([caller, ms]) => `${caller} (${((100 * ms) / entry.selfMs).toFixed(0)}%)`),
      })),
  };
}

export function formatProfile(summary: ProfileSummary, label: string): string[] {
  const lines = [
    `${label}: ${(summary.wallMs / 1000).toFixed(1)} s wall, busy ${(summary.busyMs / 1000).toFixed(1)} s (${((100 * summary.busyMs) / (summary.busyMs + summary.idleMs)).toFixed(0)}% of sampled time)`,
    '  by category (self time, % of busy):',
    ...summary.byCategory.map((c) => `    ${(100 * c.share).toFixed(1).padStart(5)}%  ${c.selfMs.toFixed(0).padStart(7)} ms  ${c.category}`),
    '  top functions (self time):',
    ...summary.top.map(
      (f) => `    ${(100 * f.share).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}  [${f.category}]${f.where === '(native)' && f.callers.length ? `  ← ${f.callers.join(', ')}` : ''}`,
    ),
  ];
  return lines;
}
