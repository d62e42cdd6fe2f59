import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { type Cluster, type Redis, ReplyError } from 'ioredis';

// The slot function ioredis itself routes by (the version it pins), so groups match its slot map.
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

/**
 * Reads the same fields of many hashes in as few Redis commands as the deployment allows: one
 * read-only script per Redis node, instead of one HMGET per hash.
 *
 * Why: serving a batch of 100 users as 100 pipelined HMGETs spends most of its CPU in the client
 * (ioredis builds, writes and resolves one command object per user); the server's work is the
 * same either way. One script call per node turns that into one command and one reply.
 *
 * The keys travel in ARGV, not KEYS, because a batch's users hash to different Cluster slots:
 * Redis refuses declared keys of different slots (CROSSSLOT) even with `allow-cross-slot-keys`,
 * which only lets a script touch undeclared keys of several slots that the node holds. On
 * Cluster the keys are grouped by the node that owns their slot in the client's slot map, and
 * each group's script runs on that node's connection.
 *
 * Whatever the script path cannot do, plain per-hash HMGET does, with today's semantics:
 * - a user whose ACL lacks EVALSHA/EVAL (NOPERM: a serving user from before this reader) turns
 *   the script path off for the life of this reader;
 * - a group the node no longer owns (a slot moved; "non local key") is read again by HMGET
 *   through the Cluster client, which follows the redirection;
 * - any other error Redis answers with (a script error, a node that refuses it) is read again
 *   by HMGET for that group.
 * A Redis that does not answer (down, timed out) is not tried twice: its error surfaces at once,
 * as the HMGETs' would.
 */
type RedisClient = Redis | Cluster;

export class MultiHashReader {
  readonly #redis: RedisClient;
  readonly #onRefused: ((reason: string) => void) | undefined;
  #scriptAllowed = true;
  #scriptLoaded = false;

  /** `onRefused`: told once, with Redis's answer, when the script path turns off for good. */
  constructor(redis: RedisClient, onRefused?: (reason: string) => void) {
    this.#redis = redis;
    this.#onRefused = onRefused;
  }

  /** Whether reads still go through the script (false after a NOPERM). */
  get usesScript(): boolean {
    return this.#scriptAllowed;
  }

  /** For each key, the fields' values (null where a field, or the whole hash, is absent), in key order. */
  async read(keys: readonly string[], fields: readonly string[]): Promise<(Buffer | null)[][]> {
    if (keys.length < MIN_KEYS_FOR_SCRIPT || !this.#scriptAllowed) return this.#hmgetEach(keys, fields);
    const rows: (Buffer | null)[][] = new Array(keys.length);
    await Promise.all(
      this.#groupByNode(keys).map(async ({ node, indexes }) => {
        const groupKeys = indexes.map((index) => keys[index]!);
        const groupRows = node && indexes.length >= MIN_KEYS_FOR_SCRIPT ? await this.#scriptOrFallback(node, groupKeys, fields) : await this.#hmgetEach(groupKeys, fields);
        indexes.forEach((index, i) => (rows[index] = groupRows[i]!));
      }),
    );
    return rows;
  }

  async #scriptOrFallback(node: Redis, keys: readonly string[], fields: readonly string[]): Promise<(Buffer | null)[][]> {
    let packed: Buffer;
    try {
      packed = await this.#runScript(node, [String(fields.length), ...fields, ...keys]);
    } catch (error) {
      if (!(error instanceof ReplyError)) throw error;
      if (isScriptRefusal(error) && this.#scriptAllowed) {
        this.#scriptAllowed = false;
        this.#onRefused?.((error as Error).message);
      }
      return this.#hmgetEach(keys, fields);
    }
    return unpackRows(packed, keys.length, fields.length) ?? this.#hmgetEach(keys, fields);
  }

  async #runScript(node: Redis, args: string[]): Promise<Buffer> {
    if (this.#scriptLoaded) {
      try {
        return (await (node as unknown as BufferScripts).evalshaBuffer(READ_SCRIPT_SHA, 0, ...args)) as Buffer;
      } catch (error) {
        if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      }
    }
    // EVAL caches the script on that node, so the next call's EVALSHA finds it (a node restarted
    // or added since answers NOSCRIPT once, and lands here again).
    const result = (await (node as unknown as BufferScripts).evalBuffer(READ_SCRIPT, 0, ...args)) as Buffer;
    this.#scriptLoaded = true;
    return result;
  }

  #hmgetEach(keys: readonly string[], fields: readonly string[]): Promise<(Buffer | null)[][]> {
    return Promise.all(keys.map((key) => this.#redis.hmgetBuffer(key, ...fields)));
  }

  /** Standalone: one group on the client itself. Cluster: by the master that owns each key's slot; `node` undefined where the map has none. */
  #groupByNode(keys: readonly string[]): { node: Redis | undefined; indexes: number[] }[] {
    if (!isCluster(this.#redis)) return [{ node: this.#redis, indexes: keys.map((_, index) => index) }];
    const cluster = this.#redis;
    const masters = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
    const groups = new Map<string, { node: Redis | undefined; indexes: number[] }>();
    keys.forEach((key, index) => {
      const owner = cluster.slots[calculateSlot(key)]?.[0] ?? '';
      let group = groups.get(owner);
      if (!group) groups.set(owner, (group = { node: masters.get(owner), indexes: [] }));
      group.indexes.push(index);
    });
    return [...groups.values()];
  }
}

/** Below this many keys (per node) one HMGET each costs no more than a script. */
const MIN_KEYS_FOR_SCRIPT = 4;

/**
 * ARGV: the number of fields F, the F field names, then the keys. Returns one string: for every key
 * in order, for every field, its length as 4 bytes little-endian and then its bytes, or FF FF FF FF
 * where the field (or the hash) is absent. One bulk string instead of an array of them, because
 * the client's reply parser costs per element. `no-writes` lets it run on replicas and under
 * read-only key permissions (%R~).
 */
const READ_SCRIPT = `#!lua flags=no-writes,allow-cross-slot-keys
local fieldCount = tonumber(ARGV[1])
local fields = {}
for f = 1, fieldCount do fields[f] = ARGV[1 + f] end
local parts = {}
local n = 0
for k = fieldCount + 2, #ARGV do
  local values = redis.call('HMGET', ARGV[k], unpack(fields))
  for f = 1, fieldCount do
    local value = values[f]
    n = n + 1
    if value then parts[n] = struct.pack('<I4', #value) .. value else parts[n] = '\\255\\255\\255\\255' end
  end
end
return table.concat(parts)
`;

const ABSENT = 0xffffffff;

/** The script's reply as rows of field values (views into `packed`, not copies); undefined if it does not parse as `keyCount` × `fieldCount` values. */
export function unpackRows(packed: Buffer, keyCount: number, fieldCount: number): (Buffer | null)[][] | undefined {
  if (!Buffer.isBuffer(packed)) return undefined;
  const rows: (Buffer | null)[][] = new Array(keyCount);
  let at = 0;
  for (let k = 0; k < keyCount; k++) {
    const row: (Buffer | null)[] = new Array(fieldCount);
    for (let f = 0; f < fieldCount; f++) {
      if (at + 4 > packed.length) return undefined;
      const length = packed.readUInt32LE(at);
      at += 4;
      if (length === ABSENT) {
        row[f] = null;
        continue;
      }
      if (at + length > packed.length) return undefined;
      row[f] = packed.subarray(at, at + length);
      at += length;
    }
    rows[k] = row;
  }
  return at === packed.length ? rows : undefined;
}

const READ_SCRIPT_SHA = createHash('sha1').update(READ_SCRIPT).digest('hex');

/**
 * ioredis defines a Buffer-reply twin of every command at run time but types only some. Not
 * `callBuffer`: with auto-pipelining on, ioredis 5.11 drops its command name (the script arrives as
 * the command).
 */
interface BufferScripts {
  evalshaBuffer(sha: string, numberOfKeys: number, ...args: string[]): Promise<unknown>;
  evalBuffer(script: string, numberOfKeys: number, ...args: string[]): Promise<unknown>;
}

function isCluster(redis: RedisClient): redis is Cluster {
  return (redis as Cluster).isCluster === true;
}

/**
 * An error that every later call would get too, so the script is given up for HMGETs once, with a
 * log line, instead of being tried (and failing) on every batch: no permission for EVAL/EVALSHA,
 * a server without them, or a Redis older than 7, which cannot compile the script's `#!lua flags`
 * line ("Error compiling script (new function): user_script:1: unexpected symbol near '#'").
 */
export function isScriptRefusal(error: unknown): boolean {
  return /^NOPERM|unknown command|ERR unknown|Error compiling script/i.test(String((error as Error)?.message ?? ''));
}
