// What people type into the search box: names and titles, mostly lowercase, sometimes cut short
// (search-as-you-type) or with a typo. Typos and fragments are also what makes a search lead nowhere.
import type { Random } from './random.js';

export interface QueryText {
  readonly query: string;
  /** The query has a typo or is a fragment: the user is less likely to click a result. */
  readonly sloppy: boolean;
}

const letters = 'abcdefghijklmnopqrstuvwxyz';

/** Turns the exact text the user has in mind into what they type. `careful` = a retry: exact, lowercase maybe. */
export function typedQuery(rng: Random, text: string, careful = false): QueryText {
  let query = text;
  if (rng.chance(0.15) && /^the /i.test(query)) query = query.slice(4);
  if (rng.chance(0.55)) query = query.toLowerCase();
  if (careful) return { query, sloppy: false };

  const r = rng.float();
  if (r < 0.08 && query.length >= 4) return { query: withTypo(rng, query), sloppy: true };
  if (r < 0.18 && query.length >= 6) {
    const keep = Math.max(3, Math.round(query.length * rng.range(0.4, 0.85)));
    return { query: query.slice(0, keep).trimEnd(), sloppy: true };
  }
  return { query, sloppy: false };
}

/** One keyboard slip: a swapped, dropped, doubled or wrong letter. */
export function withTypo(rng: Random, text: string): string {
  const positions: number[] = [];
  for (let i = 0; i < text.length; i++) if (/[a-z]/i.test(text.charAt(i))) positions.push(i);
  if (positions.length < 2) return text;
  const i = rng.pick(positions);
  const c = text.charAt(i);
  switch (rng.int(4)) {
    case 0: {
      const j = i + 1 < text.length ? i + 1 : i - 1;
      const [a, b] = j > i ? [i, j] : [j, i];
      return text.slice(0, a) + text.charAt(b) + text.charAt(a) + text.slice(b + 1);
    }
    case 1:
      return text.slice(0, i) + text.slice(i + 1);
    case 2:
      return text.slice(0, i) + c + c + text.slice(i + 1);
    default: {
      const wrong = letters.charAt(rng.int(letters.length));
      return text.slice(0, i) + (c === c.toUpperCase() ? wrong.toUpperCase() : wrong) + text.slice(i + 1);
    }
  }
}
