import test from 'ava';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { discoverFiles } from '../../backfill/file-discovery.js';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { tempDir } from './helpers.js';

// Each test lays out its own directory; the expected lists are written by hand from that layout.

async function layout(files: readonly string[]): Promise<string> {
  const dir = await tempDir();
  for (const name of files) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), name);
  }
  return dir;
}

const relativeTo = (dir: string, files: { path: string }[]) => files.map((file) => file.path.slice(dir.length + 1));

test('globs expand braces, alternatives as well as ranges', async (t) => {
  const dir = await layout(['day-1/a.jsonl', 'day-1/b.parquet', 'day-2/c.jsonl', 'day-3/d.jsonl', 'day-1/e.ndjson']);
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, '{day-1,day-3}/*.{jsonl,parquet}')])), ['day-1/a.jsonl', 'day-1/b.parquet', 'day-3/d.jsonl']);
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, 'day-{2..3}/*.jsonl')])), ['day-2/c.jsonl', 'day-3/d.jsonl']);
});

test('* and ? stay in a segment, ** spans segments, [..] is a class', async (t) => {
  const dir = await layout(['top.jsonl', 'x/y/deep.parquet', 'day-02/part-7.jsonl', 'day-04/part-7.jsonl']);
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, '*.jsonl')])), ['top.jsonl']);
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, '**/*.parquet')])), ['x/y/deep.parquet']);
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, 'day-0[1-3]/part-?.jsonl')])), ['day-02/part-7.jsonl']);
});

test('a symlinked file under a directory is read, under the name of the link', async (t) => {
  const dir = await layout(['elsewhere/events.jsonl', 'input/own.jsonl']);
  await symlink(join(dir, 'elsewhere/events.jsonl'), join(dir, 'input/linked.jsonl'));
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, 'input')])), ['input/linked.jsonl', 'input/own.jsonl']);
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, 'input/*.jsonl')])), ['input/linked.jsonl', 'input/own.jsonl']);
});

test('a file reached twice, by its name and through a link, is read once, under the name of the first argument that reaches it', async (t) => {
  const dir = await layout(['input/events.jsonl']);
  await symlink(join(dir, 'input/events.jsonl'), join(dir, 'input/z-alias.jsonl'));
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, 'input')])), ['input/events.jsonl']);
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, 'input/z-alias.jsonl'), join(dir, 'input')])), ['input/z-alias.jsonl']);
});

test('symlinked directories are followed; a link back to an ancestor does not loop', async (t) => {
  const dir = await layout(['shared/s.jsonl', 'input/own.jsonl']);
  await symlink(join(dir, 'shared'), join(dir, 'input/shared-link'));
  await symlink(join(dir, 'input'), join(dir, 'input/loop'));
  t.deepEqual(relativeTo(dir, await discoverFiles([join(dir, 'input')])), ['input/own.jsonl', 'input/shared-link/s.jsonl']);
});

test('an input that matches nothing fails naming it, as a glob and as a directory', async (t) => {
  const dir = await layout(['a/z.ndjson', 'a/_SUCCESS', 'empty/notes.txt']);
  const glob = await t.throwsAsync(discoverFiles([join(dir, '*.{parquet,pq}')]), { instanceOf: TasteError });
  t.is(glob.code, ErrorCodes.CONFIG_INVALID);
  t.is(glob.message, `input "${join(dir, '*.{parquet,pq}')}" matches no JSONL or Parquet file`);
  await t.throwsAsync(discoverFiles([join(dir, 'empty')]), { message: `input "${join(dir, 'empty')}" matches no JSONL or Parquet file` });
  await t.throwsAsync(discoverFiles([join(dir, 'a/*.jsonl')], 'parquet'), { message: /matches no parquet file/ });
});
