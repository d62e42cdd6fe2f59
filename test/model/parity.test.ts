import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { loadModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR } from '../helpers/environment.js';

// PyTorch outputs recorded at export (model/testdata/parity.json): onnxruntime-node must
// reproduce them, so what serving computes is what training measured.
interface Parity {
  model_version: string;
  atol: number;
  cases: { name: string; inputs: Record<string, number[][] | number[][][]>; user_embedding: number[][] }[];
}
const parity = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../model/testdata/parity.json', import.meta.url)), 'utf8'),
) as Parity;

test('the fixture belongs to the shipped default model', async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  t.is(bundle.metadata.modelVersion, parity.model_version);
});

test('onnxruntime-node reproduces the PyTorch embeddings', async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const session = await ort.InferenceSession.create(bundle.onnxPath, { intraOpNumThreads: 1 });
  for (const testCase of parity.cases) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, nested] of Object.entries(testCase.inputs)) {
      const dims: number[] = [];
      for (let level: unknown = nested; Array.isArray(level); level = level[0]) dims.push(level.length);
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from((nested.flat(2) as number[]).map(BigInt)), dims);
    }
    const output = (await session.run(feeds)).user_embedding!;
    const actual = output.data as Float32Array;
    const expected = testCase.user_embedding.flat();
    t.is(actual.length, expected.length, testCase.name);
    const maxDiff = Math.max(...expected.map((value, index) => Math.abs(value - actual[index]!)));
    t.true(maxDiff <= parity.atol, `${testCase.name}: max abs diff ${maxDiff} > ${parity.atol}`);
  }
  await session.release();
});
