// The evaluation set written by `python -m taste_training.pipeline_eval` (training/): the events to
// replay, and per user the held-out target and the offline reference (embedding and ranks).
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { RankingMetrics } from './ranking.js';

export const EvaluationFiles = { events: 'events.jsonl', cases: 'cases.jsonl', summary: 'offline.json' } as const;

export interface EvaluationCase {
  userId: string;
  /** How many events of this user are replayed (the history before the target). */
  events: number;
  /** Item id of the held-out event. */
  target: number;
  /** Item ids full ranking leaves out (the user's earlier items); empty when history is not masked. */
  mask: number[];
  /** Sampled-ranking negatives (LastFM); empty when the dataset has none. */
  negatives: number[];
  offlineRankFull: number;
  offlineRankSampled: number | null;
  offlineEmbedding: number[];
}

export interface OfflineSummary {
  dataset: string;
  model_version: string;
  /** Events the pipeline keeps in a stored window: max_seq_len (windowed) or the tail (stateful). */
  max_seq_len: number;
  users: number;
  events: number;
  oldest_event_time_ms: number;
  offline: { full: RankingMetrics; sampled?: RankingMetrics };
  /** The training run's own test metrics (PyTorch), when the set covers all its test users. */
  training_run: { full: RankingMetrics; sampled?: RankingMetrics } | null;
  command: string;
}

export interface EvaluationSet {
  directory: string;
  eventsPath: string;
  summary: OfflineSummary;
  cases: EvaluationCase[];
}

function invalid(message: string, cause?: unknown): TasteError {
  return new TasteError(ErrorCodes.CONFIG_INVALID, message, { cause });
}

function isIntArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((x) => Number.isInteger(x) && x >= 0);
}

function parseCase(text: string, where: string, dim: number | undefined): EvaluationCase {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw invalid(`${where}: not JSON`, cause);
  }
  const { userId, events, target, mask, negatives, offlineRankFull, offlineRankSampled, offlineEmbedding } = value;
  if (typeof userId !== 'string' || userId === '') throw invalid(`${where}: "userId" must be a non-empty string`);
  for (const [name, field] of Object.entries({ events, target, offlineRankFull })) {
    if (!Number.isInteger(field) || (field as number) < 0) throw invalid(`${where}: "${name}" must be a non-negative integer`);
  }
  if (!isIntArray(mask) || !isIntArray(negatives)) throw invalid(`${where}: "mask" and "negatives" must be arrays of item ids`);
  if (offlineRankSampled !== null && !Number.isInteger(offlineRankSampled)) throw invalid(`${where}: "offlineRankSampled" must be an integer or null`);
  if (!Array.isArray(offlineEmbedding) || !offlineEmbedding.every((x) => typeof x === 'number') || (dim !== undefined && offlineEmbedding.length !== dim)) {
    throw invalid(`${where}: "offlineEmbedding" must be ${dim ?? 'D'} numbers`);
  }
  return value as unknown as EvaluationCase;
}

/** Reads and checks `offline.json` and `cases.jsonl` of an evaluation directory. */
export async function readEvaluationSet(directory: string): Promise<EvaluationSet> {
  const summaryPath = join(directory, EvaluationFiles.summary);
  let summary: OfflineSummary;
  try {
    summary = JSON.parse(await readFile(summaryPath, 'utf8')) as OfflineSummary;
  } catch (cause) {
    throw invalid(`cannot read ${summaryPath}: is this a directory written by python -m taste_training.pipeline_eval?`, cause);
  }
  if (typeof summary.model_version !== 'string' || typeof summary.offline?.full !== 'object') {
    throw invalid(`${summaryPath}: missing "model_version" or "offline.full"`);
  }
  const casesPath = join(directory, EvaluationFiles.cases);
  const cases: EvaluationCase[] = [];
  const lines = createInterface({ input: createReadStream(casesPath, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.trim() === '') continue;
      cases.push(parseCase(text, `${casesPath}:${line}`, cases[0]?.offlineEmbedding.length));
    }
  } catch (cause) {
    if (cause instanceof TasteError) throw cause;
    throw invalid(`cannot read ${casesPath}`, cause);
  }
  if (cases.length !== summary.users) throw invalid(`${casesPath} has ${cases.length} users, ${summaryPath} says ${summary.users}`);
  const ids = new Set(cases.map((c) => c.userId));
  if (ids.size !== cases.length) throw invalid(`${casesPath}: a user appears twice`);
  return { directory, eventsPath: join(directory, EvaluationFiles.events), summary, cases };
}
