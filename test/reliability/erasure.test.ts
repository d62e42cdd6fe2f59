import test from 'ava';
import { Random } from '../../simulator/random.js';
import { KILL_SEED, LONG, simulatedUserIds, sleep, verify } from './harness.js';
import { Scenario } from './scenario.js';

// Erasures interleaved with kill -9 of the consumer. Every erased user's events all happened
// before their request time (checked below from the ground truth), so an erased user must end
// with nothing but a tombstone, whatever the kills replayed; every other user exactly as a clean
// run would leave them.

const EVENTS = LONG ? 60_000 : 12_000;
const CYCLES = LONG ? 12 : 4;
const USERS = LONG ? 2000 : 300;
/** Erased per cycle: 5% of the users in all. */
const ERASED_PER_CYCLE = Math.ceil((USERS * 0.05) / CYCLES);

test(`erasures interleaved with ${CYCLES} kill -9: 0 resurrected, 0 lost, 0 applied twice among the others`, async (t) => {
  t.timeout(LONG ? 30 * 60_000 : 4 * 60_000);
  const stream = { events: EVENTS, users: USERS, seed: 17, ratePerSecond: Math.ceil(EVENTS / (CYCLES * 5)) };
  const s = await Scenario.start(t, { stream });
  const args = s.consumerArgs(['--session-timeout-ms', '6000', '--chunk-size', '200']);
  t.log(`kill moments: seed ${KILL_SEED} (replay with TASTE_KILL_SEED=${KILL_SEED})`);
  const random = new Random(KILL_SEED);
  const users = simulatedUserIds(stream);
  /** Each erased user's request: time and id. */
  const erasedAt = new Map<string, { requestTimeMs: number; requestId: string }>();

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const consumer = s.consumer(args);
    await consumer.waitStarted();
    await sleep(200 + Math.floor(random.float() * 800));
    // Users still being produced: their later events arrive after the request, all older than it.
    const batch = users.slice(cycle * ERASED_PER_CYCLE * 3, (cycle + 1) * ERASED_PER_CYCLE * 3).filter((_, index) => index % 3 === 0);
    const requestTimeMs = Date.now();
    const requests = batch.map((userId) => ({ userId, requestTimeMs, requestId: `rel-${cycle}-${userId}` }));
    await s.erase(requests);
    for (const request of requests) erasedAt.set(request.userId, request);
    await sleep(200 + Math.floor(random.float() * 1000));
    consumer.kill('SIGKILL');
    await consumer.exited;
  }

  const { truth } = await s.produced();
  const last = s.consumer(args);
  const { lag, ms: recoveryMs } = await s.drained();

  // The premise: every event of an erased user is at or before their request time.
  for (const [userId, { requestTimeMs }] of erasedAt) {
    const newest = Math.max(...(truth.users.get(userId)?.events.map((event) => event.eventTimeMs) ?? [0]));
    t.true(newest <= requestTimeMs, `${userId}: an event at ${newest} is after the request at ${requestTimeMs}`);
  }
  // Resurrected: an erased user with any key but the tombstone, or without the tombstone.
  const resurrected: string[] = [];
  for (const [userId, { requestTimeMs, requestId }] of erasedAt) {
    const [state, versions, tombstone] = await Promise.all([
      s.redis.exists(s.store.key(userId)),
      s.redis.exists(`${s.keyPrefix}:{${userId}}:versions`),
      s.redis.get(`${s.keyPrefix}:{${userId}}:erased`),
    ]);
    if (state || versions || tombstone !== `${requestTimeMs};${requestId}`) resurrected.push(userId);
  }
  const others = new Map([...truth.users].filter(([userId]) => !erasedAt.has(userId)));
  const verdict = await verify(s.store, others, s.pool);
  last.kill('SIGTERM');
  await last.exited;
  await s.report({ scenario: 'erasure + kill -9', faults: `${erasedAt.size} erasures, ${CYCLES} x SIGKILL`, verdict, recoveryMs });
  console.log(`[reliability] erasure + kill -9 | erased ${erasedAt.size} | resurrected ${resurrected.length}`);

  t.true(erasedAt.size >= USERS * 0.04, `${erasedAt.size} users erased`);
  t.deepEqual(resurrected, [], 'erased users that came back, or lost their tombstone');
  s.assertExactlyOnce(lag, verdict);
});
