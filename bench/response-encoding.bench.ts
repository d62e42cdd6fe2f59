// Response encoding alone, in one run: serving/response-encoding.ts (the stored float32 bytes
// copied into the packed `vector` as one block) beside every library path that could replace it,
// for a GetUserEmbedding response and a BatchGetUserEmbeddings response of 100 users (95 found,
// 5 NOT_FOUND), at D = 64 and D = 256:
//   type-encode   protobufjs reflection `Type.encode(message)`, the message a plain object whose
//                 `vector` is the Float32Array (the generated encoder only reads `.length` and [i])
//   type-create   `Type.encode(Type.create(message))`, the same with a message instance on top
//   pbjs-static   protobufjs-cli static code (bench/pbjs/embedding_service.cjs) on the same object
//   generic       proto-loader's serializer, the path the direct encoder replaced: `Array.from` of
//                 each vector, `fromObject`, `encode` (`fromObject` refuses a Float32Array:
//                 "vector: array expected", so every `fromObject` path pays the copy)
// Every encoder's bytes are checked equal before anything is timed. Each figure is the direct
// encoder's time with a library path's as its ceiling (ratio < 1: the direct encoder is faster);
// the `vs_best_library` figures carry the rule for keeping it: at least 1.5× faster on the batch.
// No services needed: node dist/bench/response-encoding.bench.js [--min-ms 400] [--repeats 3]
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { PROTO_ROOT, SERVICE_PROTO } from '../proto/paths.js';
import {
  encodeBatchGetUserEmbeddingsResponse,
  encodeGetUserEmbeddingResponse,
  type ServedBatchGetUserEmbeddingsResponse,
  type ServedEmbedding,
  type ServedGetUserEmbeddingResponse,
} from '../serving/response-encoding.js';
import { loadServicePackage } from '../serving/service-definition.js';
import { Random } from '../simulator/random.js';
import { benchArgs, numberArg, OUT_DIR, REPO_ROOT } from './lib/env.js';
import { Report } from './lib/report.js';
import { fmt, pairedLoop, quantile, spread, type Spread } from './lib/stats.js';

const args = benchArgs({ 'min-ms': { type: 'string' } });
const report = new Report('response-encoding');
const minMs = numberArg(args, 'min-ms', args.long ? 2000 : 400);
const MODEL_VERSION = 'default-2026-11-26-c794956c';
const BATCH = 100;
const MISSING_EVERY = 20; // 5 of 100 users have no embedding

type Encode = (value: unknown) => Uint8Array;
interface StaticType {
  encode(message: unknown): { finish(): Uint8Array };
}
const pbjs = createRequire(import.meta.url)(`${REPO_ROOT}bench/pbjs/embedding_service.cjs`) as {
  taste: { v1: Record<'GetUserEmbeddingResponse' | 'BatchGetUserEmbeddingsResponse', StaticType> };
};
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(PROTO_ROOT, target); // imports are relative to the proto root
root.loadSync(SERVICE_PROTO);
const generic = loadServicePackage()['taste.v1.EmbeddingService'] as unknown as Record<
  'GetUserEmbedding' | 'BatchGetUserEmbeddings',
  { responseSerialize: (value: unknown) => Buffer }
>;

/** An embedding as the store decodes it: unit length, float32, a view into a larger buffer. */
function servedEmbedding(rng: Random, userId: string, dim: number): ServedEmbedding {
  const backing = new Float32Array(dim + 8);
  const vector = backing.subarray(4, 4 + dim);
  const raw = Array.from({ length: dim }, () => rng.float() * 2 - 1);
  const norm = Math.hypot(...raw);
  raw.forEach((x, d) => (vector[d] = x / norm));
  const lastEventTimeMs = 1_764_140_000_000 + rng.int(86_400_000);
  return { userId, modelVersion: MODEL_VERSION, vector, updatedTimeMs: lastEventTimeMs + 40 + rng.int(200), lastEventTimeMs, eventsInWindow: 1 + rng.int(50) };
}

/** The message object the library encoders take: the served one plus `dimension`. */
const asMessage = (embedding: ServedEmbedding) => ({ ...embedding, dimension: embedding.vector.length });
const asGeneric = (embedding: ServedEmbedding) => ({ ...embedding, vector: Array.from(embedding.vector), dimension: embedding.vector.length });

interface Case {
  id: string;
  label: string;
  encoders: Record<string, () => Uint8Array>;
}

function singleCase(dim: number): Case {
  const served: ServedGetUserEmbeddingResponse = { embedding: servedEmbedding(new Random(`single-${dim}`), 'user-4711', dim) };
  const message = { embedding: asMessage(served.embedding) };
  const type = root.lookupType('taste.v1.GetUserEmbeddingResponse');
  return {
    id: `single.d${dim}`,
    label: `GetUserEmbedding response, D = ${dim}`,
    encoders: {
      direct: () => encodeGetUserEmbeddingResponse(served),
      'type-encode': () => type.encode(message).finish(),
      'type-create': () => type.encode(type.create(message)).finish(),
      'pbjs-static': () => pbjs.taste.v1.GetUserEmbeddingResponse.encode(message).finish(),
      generic: () => (generic.GetUserEmbedding.responseSerialize as Encode)({ embedding: asGeneric(served.embedding) }),
    },
  };
}

function batchCase(dim: number): Case {
  const rng = new Random(`batch-${dim}`);
  const served: ServedBatchGetUserEmbeddingsResponse = {
    results: Array.from({ length: BATCH }, (_, i) => {
      const userId = `user-${100_000 + rng.int(900_000)}`;
      return i % MISSING_EVERY === MISSING_EVERY - 1
        ? { userId, error: { code: 5, message: 'no embedding for this user and model version' } }
        : { userId, embedding: servedEmbedding(rng, userId, dim) };
    }),
    modelVersion: MODEL_VERSION,
  };
  const message = {
    ...served,
    results: served.results.map((result) => ('embedding' in result ? { userId: result.userId, embedding: asMessage(result.embedding) } : result)),
  };
  const type = root.lookupType('taste.v1.BatchGetUserEmbeddingsResponse');
  return {
    id: `batch${BATCH}.d${dim}`,
    label: `BatchGetUserEmbeddings response, ${BATCH} users (${BATCH / MISSING_EVERY} NOT_FOUND), D = ${dim}`,
    encoders: {
      direct: () => encodeBatchGetUserEmbeddingsResponse(served),
      'type-encode': () => type.encode(message).finish(),
      'type-create': () => type.encode(type.create(message)).finish(),
      'pbjs-static': () => pbjs.taste.v1.BatchGetUserEmbeddingsResponse.encode(message).finish(),
      generic: () =>
        (generic.BatchGetUserEmbeddings.responseSerialize as Encode)({
          ...served,
          results: served.results.map((result) => ('embedding' in result ? { userId: result.userId, embedding: asGeneric(result.embedding) } : result)),
        }),
    },
  };
}

const LIBRARY = ['type-encode', 'type-create', 'pbjs-static', 'generic'] as const;
const cases = [singleCase(64), singleCase(256), batchCase(64), batchCase(256)];
const table: Record<string, Record<string, number>> = {};
// Every encoder compiled before any is timed, so the first case does not pay the others' JIT.
for (const { encoders } of cases) for (const encode of Object.values(encoders)) for (let i = 0; i < 200; i++) encode();

for (const { id, label, encoders } of cases) {
  const names = Object.keys(encoders);
  const reference = Buffer.from(encoders.direct!());
  for (const name of names) {
    const bytes = Buffer.from(encoders[name]!());
    if (!bytes.equals(reference)) throw new Error(`${id}: ${name} writes ${bytes.length} bytes that differ from the direct encoder's ${reference.length}`);
  }
  const runs: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let r = 0; r < args.repeats; r++) {
    const times = await pairedLoop(
      names.map((name) => encoders[name]!),
      { minMs, blockMs: 10, minRounds: 5 },
    );
    names.forEach((name, i) => runs[name]!.push(quantile(times[i]!, 0.5) * 1000));
  }
  const spreads: Record<string, Spread> = Object.fromEntries(names.map((name) => [name, spread(runs[name]!)]));
  table[id] = Object.fromEntries(names.map((name) => [name, spreads[name]!.median]));
  report.info(`${label}: ${reference.length} bytes, the same from every encoder; median µs/response: ${names.map((name) => `${name} ${fmt(spreads[name]!.median)}`).join(', ')}`);
  for (const name of LIBRARY) {
    report.figure({
      id: `encode.${id}.vs_${name.replace('-', '_')}`,
      label: `${label}: direct encoder vs ${name}`,
      unit: 'µs/response',
      value: spreads.direct!.median,
      spread: spreads.direct!,
      ceiling: spreads[name]!.median,
      ceilingSpread: spreads[name]!,
      ceilingLabel: name,
      lowerIsBetter: true,
    });
  }
  const best = LIBRARY.filter((name) => name !== 'generic').reduce((a, b) => (spreads[a]!.median <= spreads[b]!.median ? a : b));
  report.figure({
    id: `encode.${id}.vs_best_library`,
    label: `${label}: direct encoder vs the fastest library path (${best})`,
    unit: 'µs/response',
    value: spreads.direct!.median,
    spread: spreads.direct!,
    ceiling: spreads[best]!.median,
    ceilingSpread: spreads[best]!,
    ceilingLabel: best,
    lowerIsBetter: true,
    // The direct encoder stays only while it is at least 1.5× faster than a library path (≈ 0.67).
    ...(id.startsWith('batch') ? { goal: { kind: 'max-ratio' as const, target: 0.67 } } : {}),
  });
}
report.context('medianUsPerResponse', table);
report.finish(OUT_DIR);
