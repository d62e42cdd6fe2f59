import test from 'ava';
import { logLevel } from 'kafkajs';
import { createLogger } from '../../common/logger.js';
import { createKafka, kafkaLogSeverity } from '../../consumers/kafka.js';

// kafkajs logs at error level what it is about to retry. A first-time user must not read a retried
// moment as a failure, while what kafkajs gives up on stays an error.

test('a request error kafkajs retries (a fresh broker\'s "coordinator is loading") is a warning', (t) => {
  // The exact shape kafkajs 2.2.4's network/connection.js writes for an error response.
  const entry = {
    level: logLevel.ERROR,
    namespace: 'Connection',
    log: {
      message: 'Response FindCoordinator(key: 10, version: 2)',
      timestamp: '2026-12-02T06:00:00.000Z',
      logger: 'kafkajs',
      broker: '127.0.0.1:39092',
      clientId: 'taste',
      error: "The coordinator is loading and hence can't process requests for this group",
      correlationId: 3,
      size: 31,
    },
  };
  t.is(kafkaLogSeverity(entry), 'warn');
});

test('a consumer crash and an error outside any retry stay errors; warnings stay warnings', (t) => {
  const base = { timestamp: '', logger: 'kafkajs' };
  t.is(kafkaLogSeverity({ level: logLevel.ERROR, namespace: 'Consumer', log: { ...base, message: 'Crash: KafkaJSNumberOfRetriesExceeded: x', retryCount: 5 } }), 'error');
  t.is(kafkaLogSeverity({ level: logLevel.ERROR, namespace: 'Runner', log: { ...base, message: 'Error when calling eachBatch' } }), 'error');
  t.is(kafkaLogSeverity({ level: logLevel.ERROR, namespace: 'Consumer', log: { ...base, message: 'Restarting the consumer in 300ms', retryTime: 300 } }), 'warn');
  t.is(kafkaLogSeverity({ level: logLevel.WARN, namespace: 'ConsumerGroup', log: { ...base, message: 'The group is rebalancing, re-joining' } }), 'warn');
});

test('real kafkajs against a closed port: its retried attempts are warnings, and the final failure is thrown', async (t) => {
  const lines: Array<{ level: string; msg: string }> = [];
  const logger = createLogger('debug', {}, (line) => lines.push(JSON.parse(line) as { level: string; msg: string }));
  const kafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'taste-log-test', connectionTimeoutMs: 200 }, logger);
  const admin = kafka.admin();
  await t.throwsAsync(admin.connect(), { name: 'KafkaJSNumberOfRetriesExceeded' });
  const kafkaLines = lines.filter((line) => line.msg.startsWith('kafka: '));
  t.true(kafkaLines.length > 0, 'kafkajs logged its attempts');
  const retried = kafkaLines.filter((line) => /trying another broker|reconnecting|Connection error/.test(line.msg));
  t.true(retried.length > 0, JSON.stringify(kafkaLines));
  t.deepEqual([...new Set(kafkaLines.map((line) => line.level))], ['warn'], JSON.stringify(kafkaLines));
});
