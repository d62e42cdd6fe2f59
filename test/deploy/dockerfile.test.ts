import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENTS_PROTO, PROTO_ROOT, SERVICE_PROTO } from '../../proto/paths.js';

// No Docker engine here: what a build would reveal late (a file left out of the context, the
// .proto files not where dist/ looks for them, a root user) is checked from the files.
// hadolint (scripts/validate-manifests.sh) checks the Dockerfile's own practices.

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const DIST = join(ROOT, 'dist');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

interface Stage {
  name: string;
  instructions: string[];
}

/** FROM-separated stages, continuation lines joined, comments dropped. */
function stages(): Stage[] {
  const logical = dockerfile
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const result: Stage[] = [];
  for (const line of logical) {
    const from = /^FROM\s+\S+\s+AS\s+(\S+)/i.exec(line);
    if (from) result.push({ name: from[1]!, instructions: [] });
    else result.at(-1)?.instructions.push(line);
  }
  return result;
}

/** Docker's .dockerignore semantics for the patterns used here: root-anchored, `**\/` any depth. */
function isIgnored(path: string): boolean {
  return ignored.some((pattern) => {
    if (pattern.startsWith('!')) throw new Error('negated .dockerignore patterns are not handled by this test');
    const anyDepth = pattern.startsWith('**/');
    const body = anyDepth ? pattern.slice(3) : pattern;
    const regex = new RegExp(`^${body.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    const segments = path.split('/');
    return anyDepth ? segments.some((_, i) => regex.test(segments.slice(i).join('/'))) : regex.test(path);
  });
}

const runtime = () => stages().find((stage) => stage.name === 'runtime')!;

test('the runtime stage copies what `node dist/cli/main.js` needs, and the entry point is the package bin', (t) => {
  const copies = runtime().instructions.filter((line) => line.startsWith('COPY'));
  for (const needed of ['/app/package.json', '/app/node_modules/', '/app/dist/', '/app/proto/taste/', 'models/']) {
    t.true(copies.some((line) => line.includes(` ${needed} `)), `COPY of ${needed}`);
  }
  const bin = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.taste;
  t.true(runtime().instructions.includes(`ENTRYPOINT ["node", "${bin}"]`), `ENTRYPOINT runs ${bin}`);
});

test('the .proto files land where dist/ reads them at run time', (t) => {
  // dist/proto/paths.js resolves ../../proto from itself: /app/dist/proto → /app/proto.
  t.is(relative(DIST, PROTO_ROOT), join('..', 'proto'));
  t.true(runtime().instructions.some((line) => /COPY --from=build .*\/app\/proto\/taste\/ proto\/taste\//.test(line)));
  for (const file of [EVENTS_PROTO, SERVICE_PROTO]) {
    t.true(file.startsWith('taste/'), `${file} is under the copied proto/taste/`);
    t.true(existsSync(join(PROTO_ROOT, file)), file);
  }
});

test('.dockerignore keeps the build inputs and leaves out the heavy and the generated', (t) => {
  const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
  const roots = tsconfig.include.map((pattern) => pattern.split('/')[0]!).filter((dir) => existsSync(join(ROOT, dir)));
  for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'models/default/model.onnx', ...new Set(roots)]) {
    t.false(isIgnored(path), `${path} is in the build context`);
  }
  for (const path of ['node_modules', 'dist', '.git', 'training', '.taste', 'proto/generated', 'training/.venv/lib/x.py']) {
    t.true(isIgnored(path), `${path} is left out`);
  }
});

test('the image runs as a numeric non-root user, and the GPU variant brings the Vulkan loader', (t) => {
  // The stages an image is made of; build and cuda-provider only feed them files.
  for (const stage of stages().filter((s) => s.name.startsWith('runtime'))) {
    const user = stage.instructions.filter((line) => line.startsWith('USER ')).at(-1);
    t.regex(user ?? '', /^USER [1-9]\d*(:\d+)?$/, `${stage.name} ends as a numeric non-root user`);
  }
  const gpu = stages().find((stage) => stage.name === 'runtime-gpu');
  t.truthy(gpu?.instructions.find((line) => line.includes('libvulkan1')));
});

test('the GPU variant takes the CUDA provider from PyPI only when asked, into the folder onnxruntime-node loads providers from', (t) => {
  const provider = stages().find((stage) => stage.name === 'cuda-provider');
  if (!provider) throw new Error('no cuda-provider stage');
  t.true(provider.instructions.includes('ARG TASTE_CUDA_PROVIDER=none'), 'off unless asked');
  const install = provider.instructions.find((line) => line.startsWith('RUN ') && line.includes('install-cuda-provider.sh'));
  t.regex(install ?? '', /if \[ "\$TASTE_CUDA_PROVIDER" = pypi \]; then\s+bash scripts\/install-cuda-provider\.sh /);
  // What the script reads is copied in, and is in the build context.
  for (const file of ['scripts/install-cuda-provider.sh', 'scripts/cuda-provider-wheel.py']) {
    t.true(provider.instructions.some((line) => line.startsWith('COPY ') && line.includes(file)), `COPY of ${file}`);
    t.true(existsSync(join(ROOT, file)), file);
    t.false(isIgnored(file), `${file} is in the build context`);
  }
  t.true(provider.instructions.some((line) => /COPY --from=build \/app\/node_modules\/onnxruntime-node\/package\.json /.test(line)), 'onnxruntime-node\'s version');
  const targetDir = /--target (\S+)/.exec(install ?? '')?.[1];
  const libsDir = /--cuda-libs (\S+)/.exec(install ?? '')?.[1];
  const gpu = stages().find((stage) => stage.name === 'runtime-gpu')!;
  // /app is the runtime's WORKDIR: the providers land beside /app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1.
  t.true(gpu.instructions.some((line) => line.startsWith(`COPY --from=cuda-provider --chown=root:root ${targetDir}/ node_modules/onnxruntime-node/bin/napi-v6/linux/x64/`)));
  const libsCopy = gpu.instructions.find((line) => line.startsWith(`COPY --from=cuda-provider --chown=root:root ${libsDir}/ `));
  const libsInImage = libsCopy?.split(' ').at(-1)?.replace(/\/$/, '');
  t.truthy(libsInImage);
  t.true(gpu.instructions.includes(`ENV LD_LIBRARY_PATH=${libsInImage}`), 'the CUDA libraries are on LD_LIBRARY_PATH');
});

test('the image and the Kubernetes config agree on where the model is', (t) => {
  const imageModel = /TASTE_MODEL_DIR=(\S+)/.exec(runtime().instructions.join(' '))?.[1];
  t.is(imageModel, '/app/models/default');
  t.true(existsSync(join(ROOT, 'models/default/model.onnx')));
  const config = readFileSync(join(ROOT, 'deploy/k8s/base/config.yaml'), 'utf8');
  t.regex(config, new RegExp(`TASTE_MODEL_DIR: ${imageModel}\\n`));
});
