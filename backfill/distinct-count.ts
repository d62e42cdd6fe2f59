import { createHash } from 'node:crypto';

const EXACT_LIMIT = 100_000;
const REGISTER_BITS = 14;
const REGISTERS = 1 << REGISTER_BITS;

/**
 * Counts distinct user ids in bounded memory: exactly up to 100 000, then by HyperLogLog
 * (16 384 registers, about 0.8% error), so a backfill over any number of users stays small.
 */
export class DistinctCount {
  #exact: Set<string> | undefined = new Set();
  readonly #registers = new Uint8Array(REGISTERS);

  add(value: string): void {
    const digest = createHash('md5').update(value).digest();
    const word = digest.readUInt32BE(0);
    const index = word >>> (32 - REGISTER_BITS);
    const rest = ((word << REGISTER_BITS) >>> 0) | (1 << (REGISTER_BITS - 1)); // sentinel bounds the rank
    const rank = Math.clz32(rest) + 1;
    if (rank > this.#registers[index]!) this.#registers[index] = rank;
    if (this.#exact) {
      this.#exact.add(value);
      if (this.#exact.size > EXACT_LIMIT) this.#exact = undefined;
    }
  }

  get exact(): boolean {
    return this.#exact !== undefined;
  }

  get value(): number {
    if (this.#exact) return this.#exact.size;
    let sum = 0;
    let zeros = 0;
    for (const register of this.#registers) {
      sum += 2 ** -register;
      if (register === 0) zeros++;
    }
    const alpha = 0.7213 / (1 + 1.079 / REGISTERS);
    const estimate = (alpha * REGISTERS * REGISTERS) / sum;
    if (estimate <= 2.5 * REGISTERS && zeros > 0) return Math.round(REGISTERS * Math.log(REGISTERS / zeros));
    return Math.round(estimate);
  }
}
