import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR } from '../helpers/environment.js';
import { copyModelAsVersion } from '../helpers/onnx.js';
import { KILL_SEED, killMoments, LONG } from './harness.js';
import { Scenario } from './scenario.js';

// kill -9 of a consumer that runs a shadow model beside the primary (docs/rollout.md): every
// version's keys are written in one atomic step per user, so after the kills each version on its
// own must hold every event exactly once, with the windows and embeddings of a clean run. The
// shadow is the primary's model under another version: the same truth, reached by its own lane.

const EVENTS = LONG ? 60_000 : 15_000;
const CYCLES = LONG ? 12 : 5;

test(`kill -9 of a consumer with a shadow model ${CYCLES} times: each version exactly once`, async (t) => {
  t.timeout(LONG ? 30 * 60_000 : 4 * 60_000);
  const scratch = await mkdtemp(join(tmpdir(), 'taste-rel-shadow-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const primaryVersion = (await loadModelBundle(DEFAULT_MODEL_DIR)).metadata.modelVersion;
  const shadowVersion = `${primaryVersion}-shadow`;
  const shadowDir = await copyModelAsVersion(DEFAULT_MODEL_DIR, join(scratch, 'shadow'), shadowVersion);
  const s = await Scenario.start(t, {
    stream: { events: EVENTS, users: LONG ? 2000 : 300, seed: 23, poisonEvery: 250, ratePerSecond: Math.ceil(EVENTS / (CYCLES * 6)) },
    shadowModelDirs: [shadowDir],
  });
  t.deepEqual(
    s.models.map((model) => model.store.modelVersion),
    [primaryVersion, shadowVersion],
  );
  s.watchVersions();
  const args = s.consumerArgs(['--session-timeout-ms', '6000', '--chunk-size', '200']);
  t.log(`kill moments: seed ${KILL_SEED} (replay with TASTE_KILL_SEED=${KILL_SEED})`);
  const { sent, truth, lag, recoveryMs, last, exit } = await s.killEachThenDrain(args, killMoments(KILL_SEED, CYCLES));
  t.is(truth.valid + truth.invalid, sent.records);
  t.is(exit.code, 0, last.stderr.slice(-1000));
  t.false(last.stderr.includes('shadow model suspended'), 'the shadow ran throughout');

  for (const model of s.models) {
    const version = model.store.modelVersion;
    const verdict = await s.verify(model);
    await s.report({ scenario: `kill -9 with a shadow, version ${version}`, faults: `${CYCLES} x SIGKILL`, verdict, recoveryMs }, model);
    if (verdict.lost > 0 || verdict.doubleApplied > 0) t.log(`failed with kill seed ${KILL_SEED}: TASTE_KILL_SEED=${KILL_SEED} replays these kill moments`);
    s.assertExactlyOnce(lag, verdict, model);
    t.is(verdict.expectedEvents, truth.valid, `every valid record is an event of version ${version}`);
    t.is(verdict.appliedEvents, truth.valid, `events applied in version ${version}`);
  }
});
