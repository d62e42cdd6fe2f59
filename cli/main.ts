#!/usr/bin/env node
import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { runConsumeCommand } from './consume-command.js';
import { UsageError } from './flags.js';

type Command = (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>;

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  demo: { summary: 'run the whole pipeline locally on simulated listeners and show their embeddings', load: async () => (await import('./demo-command.js')).runDemoCommand },
  consume: { summary: 'the streaming job: Kafka events → embeddings in Redis', load: async () => runConsumeCommand },
  serve: { summary: 'the gRPC embedding service', load: async () => (await import('./serve-command.js')).runServeCommand },
  produce: { summary: 'stream simulated play and search events into Kafka', load: async () => (await import('./produce-command.js')).runProduceCommand },
  backfill: { summary: 'rebuild state and embeddings from JSONL/Parquet files or a Kafka time range', load: async () => (await import('./backfill-command.js')).runBackfillCommand },
  erase: { summary: 'erase listeners: every key of theirs goes, and old events cannot bring them back', load: async () => (await import('./erase-command.js')).runEraseCommand },
  rollout: { summary: 'switch the default model version of every taste serve at runtime; status of each version', load: async () => (await import('./rollout-command.js')).runRolloutCommand },
  evaluate: { summary: 'replay a test split through the running pipeline and compare with the offline metrics', load: async () => (await import('./evaluate-command.js')).runEvaluateCommand },
  simulate: { summary: 'write simulated events (JSONL), the catalogue and the true tastes to files', load: async () => (await import('./simulate-command.js')).runSimulateCommand },
};

function usage(): string {
  const lines = ['Usage: taste <command> [options]', '', 'Commands:'];
  for (const [name, command] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)}${command.summary}`);
  lines.push('', 'Run `taste <command> --help` for its options. Every option can also be set by its environment variable.');
  lines.push('Read more: README.md (semantics, operations, the gRPC API) and docs/ (deployment, backfill, evaluation, runbook).');
  return lines.join('\n');
}

/**
 * Every failure prints a code. Errors are translated to TasteError where they arise (kafkajs in
 * consumers/kafka.ts, ioredis in featurestore/, gRPC calls in evaluation/); one that reaches here
 * untranslated is our bug, and says so with TASTE_INTERNAL and its own class name.
 */
function describeFailure(error: unknown): string {
  if (error instanceof TasteError) return `${describeError(error)} [${error.code}${error.canRetry ? ', retrying may help' : ''}]`;
  const kind = error instanceof Error ? error.name : typeof error;
  return `${describeError(error)} [${ErrorCodes.INTERNAL}: untranslated ${kind}]`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`taste: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await command.load())(rest, process.env);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`taste ${name}: ${error.message} (see taste ${name} --help)`);
      return 2;
    }
    console.error(`taste ${name}: ${describeFailure(error)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
// Everything is closed by now; a stray handle (a reconnect timer) must not keep a finished command alive.
setTimeout(() => process.exit(), 2000).unref();
