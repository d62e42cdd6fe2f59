import test from 'ava';
import { createHash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import { writeCatalogueTsv, writeEventsJsonl } from '../../simulator/jsonl.js';
import { createWorld } from '../../simulator/world.js';

// Golden digests of the seed-1 world that models/default was trained on
// (training/train-default.sh: `taste simulate --seed 1 --users 1000 --days 14`, the demo catalogue
// with the CLI's default --items, --start and --search-rate).
//
// Why they must not change silently: the default model's item table, its genres and its parity
// fixtures (model/testdata/parity.json) come from these exact files, and every draw of the seeded
// random-number generator depends on the order of the draws before it. One extra draw anywhere
// (a new attribute, a reordered loop) gives another world, and the shipped model then no longer
// matches the data `bash training/train-default.sh` regenerates.
//
// If a change to the simulator is meant to change the world: retrain and re-export the default
// model (bash training/train-default.sh), then regenerate these digests with
//   npx tsc -p tsconfig.json && TASTE_PRINT_GOLDEN=1 npx ava dist/test/simulator/golden.test.js
// and commit the new literals with the retrained model, saying why in the commit message.
// The literals were first taken from the CLI's own files (sha256sum of --catalogue-out and --out),
// so the test's in-memory path is checked against the command the training script runs.
const GOLDEN = {
  catalogueTsv: '15eed8aa2a47c2b09683ecbe12bb235698e37efb4d3d8144fbe283eba6fc5fa8',
  eventsJsonl: 'f893354032f177fd0ce10f2c2f0a6968ac0aa77b9cfd5946be7eee78e7dc6108',
} as const;

/** The whole 14 days: every event the default model was trained and tested on. */
const EVENTS = 120_004;
const DAY_MS = 86_400_000;
/** What `taste simulate --seed 1 --users 1000 --days 14` passes to the world (see simulator/cli.ts). */
const world = createWorld({ seed: 1, users: 1000, durationMs: 14 * DAY_MS });

function hashingSink(hash: Hash): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done();
    },
  });
}

function check(t: import('ava').ExecutionContext, name: keyof typeof GOLDEN, digest: string): void {
  if (process.env.TASTE_PRINT_GOLDEN) t.log(`${name}: '${digest}',`);
  t.is(digest, GOLDEN[name], `the seed-1 ${name} changed: see the comment at the top of test/simulator/golden.test.ts`);
}

test('the seed-1 catalogue, as the TSV writer writes it, is byte for byte the one the default model was trained on', async (t) => {
  const hash = createHash('sha256');
  const written = await writeCatalogueTsv(world.catalogue.items, hashingSink(hash));
  t.is(written, 5000, 'the demo catalogue (the CLI default --items)');
  check(t, 'catalogueTsv', hash.digest('hex'));
});

test('the seed-1 events, as JSONL, are byte for byte the ones the default model was trained on', async (t) => {
  const hash = createHash('sha256');
  const written = await writeEventsJsonl(world.events(), hashingSink(hash));
  t.is(written, EVENTS);
  check(t, 'eventsJsonl', hash.digest('hex'));
});
