// The fault-injection suite (issue: reliability): heavy, so it runs after the main suite, one
// file at a time. scripts/reliability.sh runs the long form (TASTE_RELIABILITY_LONG=1).
export default {
  files: ['dist/test/reliability/**/*.test.js'],
  concurrency: 1,
  timeout: '10m',
  workerThreads: false,
  verbose: true,
};
