// Paced simulated traffic for the freshness benchmark, in its own process (as producers are in
// production), so producing does not share the stream job's event loop. Events are stamped with
// the moment they are built; sends are awaited (if Kafka is slower, the rate drops, never memory).
// Prints one JSON line with what it sent when done. Bursts: every `burst-every` s, the rate is
// multiplied by `burst-factor` for `burst-seconds` s (and lowered between bursts, same mean).
import { parseArgs } from 'node:util';
import { EventProducer, type TasteEvent } from '../consumers/event-producer.js';
import { createProducer } from '../consumers/kafka.js';
import { benchKafka } from './lib/services.js';
import { benchWorld } from './lib/traffic.js';

const { values } = parseArgs({
  options: {
    plays: { type: 'string' },
    searches: { type: 'string' },
    users: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    'burst-factor': { type: 'string', default: '1' },
    'burst-every': { type: 'string', default: '5' },
    'burst-seconds': { type: 'string', default: '1' },
  },
});
if (!values.plays || !values.searches || !values.rate || !values.seconds) {
  throw new Error('producer-child needs --plays --searches --rate --seconds');
}
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const factor = Number(values['burst-factor']);
const every = Number(values['burst-every']);
const burst = Number(values['burst-seconds']);
// Keep the mean rate: burst share runs at factor × base, the rest at a lower rate.
const low = factor === 1 ? 1 : Math.max(0, (every - factor * burst) / (every - burst));
const rateAt = (s: number) => rate * (factor === 1 ? 1 : s % every < burst ? factor : low);

const world = benchWorld(Number(values.users), Number(values.seed));
const source = world.events();
const kafka = benchKafka('taste-bench-producer');
const producer = createProducer(kafka, { idempotent: true });
await producer.connect();
const events = new EventProducer(producer, { play: values.plays, search: values.searches });
const started = Date.now();
let sent = 0;
let owed = 0;
let last = started;
const users = new Set<string>();
while (Date.now() - started < seconds * 1000) {
  const now = Date.now();
  owed += (rateAt((now - started) / 1000) * (now - last)) / 1000;
  last = now;
  const due = Math.floor(owed);
  if (due <= 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    continue;
  }
  const batch: TasteEvent[] = [];
  for (let i = 0; i < Math.min(due, 5000); i++) {
    const next = source.next();
    if (next.done) break;
    const simulated = next.value;
    const eventTimeMs = Date.now();
    users.add(simulated.event.userId);
    batch.push(
      simulated.kind === 'play'
        ? { kind: 'play', event: { ...simulated.event, eventTimeMs } }
        : { kind: 'search', event: { ...simulated.event, eventTimeMs } },
    );
  }
  if (batch.length === 0) break;
  owed -= batch.length;
  await events.send(batch);
  sent += batch.length;
}
await producer.disconnect();
process.stdout.write(JSON.stringify({ sent, users: users.size, seconds: (Date.now() - started) / 1000 }) + '\n');
