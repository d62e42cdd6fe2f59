import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The layer check (scripts/check-layers.mjs, npm run lint:layers) run as CI runs it, on small
// hand-made trees whose violations are written out here.
const CHECK = fileURLToPath(new URL('../../../scripts/check-layers.mjs', import.meta.url));

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'taste-layers-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function check(files: Record<string, string>): { status: number | null; errors: string[] } {
  const root = tree(files);
  try {
    const run = spawnSync(process.execPath, [CHECK, root], { encoding: 'utf8' });
    const errors = run.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('[lint:layers]'));
    return { status: run.status, errors };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const ORDER = /\(order: common → .+ → cli\)$/;

const clean = {
  'common/errors.ts': 'export class TasteError extends Error {}\n',
  'proto/generated/events.ts': 'export interface PlayEvent { id: string }\n',
  'proto/event-codec.ts': "import type { PlayEvent } from './generated/events.js';\nimport protobuf from 'protobufjs';\nexport const root = new URL('../../proto', import.meta.url);\nexport type E = PlayEvent;\nexport const p = protobuf;\n",
  'featurestore/pool.ts': "import { TasteError } from '../common/errors.js';\nexport const WORKER = new URL('./worker.js', import.meta.url);\nexport const e = TasteError;\n",
  'featurestore/worker.ts': 'export {};\n',
  'model/codec.ts': "export type { E } from '../proto/event-codec.js';\nexport * from '../featurestore/pool.js';\n",
  'cli/main.ts': "export const load = async () => (await import('../model/codec.js')).WORKER;\n",
  'test/anything.test.ts': "import { load } from '../cli/main.js';\nexport const l = load;\n",
  'bench/x.bench.ts': "import '../cli/main.js';\n",
  'training/notes.ts': "import '../cli/main.js';\n",
  'docs/readme.md': 'no TypeScript here\n',
};

test('a tree whose imports all run down the order passes, with test/, bench/ and training/ outside it', (t) => {
  t.deepEqual(check(clean), { status: 0, errors: [] });
});

test('every kind of import that runs upward is reported with its file and the folder it reaches', (t) => {
  const { status, errors } = check({
    ...clean,
    'common/static.ts': "import { WORKER } from '../featurestore/pool.js';\nexport const w = WORKER;\n",
    'common/type-only.ts': "import type { E } from '../model/codec.js';\nexport type T = E;\n",
    'proto/reexport.ts': "export { load } from '../cli/main.js';\n",
    'featurestore/dynamic.ts': "export const f = () => import('../model/codec.js');\n",
    'featurestore/type-query.ts': "export type L = typeof import('../cli/main.js').load;\n",
    'common/worker-url.ts': "export const W = new URL('../featurestore/worker.js', import.meta.url);\n",
    'featurestore/side-effect.ts': "import '../model/codec.js';\n",
  });
  t.is(status, 1);
  const reported = errors.map((line) => line.replace(ORDER, '').trim());
  t.deepEqual(reported.sort(), [
    'common/static.ts: imports higher folder featurestore',
    'common/type-only.ts: imports higher folder model',
    'common/worker-url.ts: imports higher folder featurestore',
    'featurestore/dynamic.ts: imports higher folder model',
    'featurestore/side-effect.ts: imports higher folder model',
    'featurestore/type-query.ts: imports higher folder cli',
    'proto/reexport.ts: imports higher folder cli',
  ]);
  t.true(errors.every((line) => ORDER.test(line)), errors.join('\n'));
});

test('a layered folder may not import test/ or bench/, which sit outside the order', (t) => {
  const { status, errors } = check({ ...clean, 'featurestore/uses-test.ts': "import '../test/anything.test.js';\n" });
  t.is(status, 1);
  t.regex(errors.join('\n'), /^featurestore\/uses-test\.ts: imports folder test that is not in the layer order/);
});

test('a new folder holding TypeScript fails until it is placed in the order', (t) => {
  const { status, errors } = check({ ...clean, 'scoring/items.ts': "import '../common/errors.js';\n" });
  t.is(status, 1);
  t.is(errors.length, 1);
  t.regex(errors[0]!, /^scoring\/: folder not in the layer order; add it to LAYERS in scripts\/check-layers\.mjs/);
});
