#!/usr/bin/env node
// The layer check (npm run lint:layers): a folder may import only from itself and the folders
// before it in LAYERS. This array is the single written-down order; the README's Layout section
// points here. Folders in OUTSIDE may import anything and are not checked; any other top-level
// folder holding TypeScript is an error, so a new folder has to be placed in the order.
//
// Imports are read with the TypeScript parser: import/export-from (type-only too), dynamic
// import() and import('x').T type queries, and worker scripts named by
// new URL('./x.js', import.meta.url). Package specifiers are not layers and are skipped.
//
// Usage: node scripts/check-layers.mjs [root]   (root defaults to the repository)
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const LAYERS = [
  'common',
  'proto', // includes proto/generated
  'events',
  'simulator',
  'featurestore', // below model: stores events and vectors, knows nothing of the model
  'model',
  'updater',
  'consumers',
  'serving',
  'backfill',
  'evaluation',
  'metrics',
  'cli',
];

/** May import anything; not checked. The rest hold no TypeScript or are not ours. */
export const OUTSIDE = ['bench', 'test', 'training'];
const IGNORED = new Set(['node_modules', 'dist', '.git']);
const SOURCE = /\.(ts|mts|cts)$/;
const DECLARATION = /\.d\.(ts|mts|cts)$/;

function sourceFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (IGNORED.has(entry.name) || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.isFile() && SOURCE.test(entry.name) && !DECLARATION.test(entry.name)) files.push(path);
  }
  return files;
}

function isImportMetaUrl(node) {
  return (
    ts.isPropertyAccessExpression(node) &&
    node.name.text === 'url' &&
    ts.isMetaProperty(node.expression) &&
    node.expression.keywordToken === ts.SyntaxKind.ImportKeyword
  );
}

/** Every module specifier a file names: static, type-only, dynamic, and worker URLs. */
export function specifiers(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      found.push(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) found.push(arg.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'URL') {
      // Only module paths: new URL('../../proto', import.meta.url) in proto/paths.ts names data.
      const [path, base] = node.arguments ?? [];
      if (path && base && ts.isStringLiteralLike(path) && isImportMetaUrl(base) && /\.(m?js|ts)$/.test(path.text)) found.push(path.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function topFolder(root, path) {
  const rel = relative(root, path);
  if (rel.startsWith('..') || rel === '') return undefined;
  const parts = rel.split(sep);
  return parts.length > 1 ? parts[0] : ''; // '' = a file at the root
}

/** Returns one message per violation; empty when the tree follows the order. */
export function checkLayers(root) {
  const order = LAYERS.join(' → ');
  const problems = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || IGNORED.has(entry.name) || entry.name.startsWith('.')) continue;
    if (LAYERS.includes(entry.name) || OUTSIDE.includes(entry.name)) continue;
    if (sourceFiles(join(root, entry.name)).length > 0) {
      problems.push(`${entry.name}/: folder not in the layer order; add it to LAYERS in scripts/check-layers.mjs (order: ${order})`);
    }
  }
  for (const layer of LAYERS) {
    let files;
    try {
      files = sourceFiles(join(root, layer));
    } catch (error) {
      if (error.code === 'ENOENT') continue; // a layer not (yet) present
      throw error;
    }
    const rank = LAYERS.indexOf(layer);
    for (const file of files) {
      const name = relative(root, file).split(sep).join('/');
      for (const spec of specifiers(file, readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue; // a package
        const target = topFolder(root, resolve(dirname(file), spec));
        if (target === layer) continue;
        if (target === undefined || target === '') {
          problems.push(`${name}: imports ${spec}, outside the layered folders (order: ${order})`);
        } else if (!LAYERS.includes(target)) {
          problems.push(`${name}: imports folder ${target} that is not in the layer order (order: ${order})`);
        } else if (LAYERS.indexOf(target) > rank) {
          problems.push(`${name}: imports higher folder ${target} (order: ${order})`);
        }
      }
    }
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  const problems = checkLayers(root);
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) {
    console.error(`[lint:layers] ${problems.length} violation(s)`);
    process.exit(1);
  }
  console.log(`[lint:layers] ok: ${LAYERS.join(' → ')}`);
}
