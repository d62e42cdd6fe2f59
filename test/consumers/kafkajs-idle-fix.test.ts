import test from 'ava';
import { createRequire } from 'node:module';
import { createKafka } from '../../consumers/kafka.js';
import { applyKafkajsIdleFix, KAFKAJS_VERSION_FIXED } from '../../consumers/kafkajs-idle-fix.js';
import { createLogger } from '../../common/logger.js';
import { KAFKA_BROKERS } from '../helpers/environment.js';

// Against the real broker: an idle kafkajs client must not spin on its request queues
// (tulios/kafkajs#1556). The count comes from kafkajs's own method, wrapped here, not from the fix.
const require = createRequire(import.meta.url);

test('the fix is written for the kafkajs installed; another version must be looked at again', (t) => {
  t.is((require('kafkajs/package.json') as { version: string }).version, KAFKAJS_VERSION_FIXED);
  t.true(applyKafkajsIdleFix());
});

test('an idle client connected to the broker checks its request queues a handful of times a second, not hundreds', async (t) => {
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: { checkPendingRequests(): void } };
  const check = RequestQueue.prototype.checkPendingRequests;
  let checks = 0;
  RequestQueue.prototype.checkPendingRequests = function (this: unknown) {
    checks++;
    check.call(this);
  };
  t.teardown(() => {
    RequestQueue.prototype.checkPendingRequests = check;
  });
  const admin = createKafka({ brokers: KAFKA_BROKERS, clientId: 'taste-idle-fix-test' }, createLogger('silent')).admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await admin.listTopics(); // a fulfilled request is what set the loop off
  await new Promise((resolve) => setTimeout(resolve, 200));
  checks = 0;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.true(checks < 20, `${checks} checks of the request queues in 1 s of idle`);
});
