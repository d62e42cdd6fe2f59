// Counts over an event stream: the numbers the CLI prints and the tests check realism against.
import type { EventRecord } from '../events/event-record.js';

export class EventStats {
  events = 0;
  plays = 0;
  searches = 0;
  /** Searches with a clicked result. */
  clickedSearches = 0;
  /** Plays that ended SKIPPED_FORWARD/BACKWARD. */
  skips = 0;
  completions = 0;
  userStops = 0;
  firstTimeMs = Number.POSITIVE_INFINITY;
  lastTimeMs = Number.NEGATIVE_INFINITY;
  readonly byContext = new Map<string, number>();
  readonly byItemKind = new Map<string, number>();
  /** Events per user; only kept when constructed with `perUser: true` (O(users) memory). */
  readonly perUser = new Map<string, number>();
  readonly #perUser: boolean;

  constructor(options: { perUser?: boolean } = {}) {
    this.#perUser = options.perUser ?? false;
  }

  add(simulated: EventRecord): void {
    this.events++;
    const time = simulated.event.eventTimeMs;
    if (time < this.firstTimeMs) this.firstTimeMs = time;
    if (time > this.lastTimeMs) this.lastTimeMs = time;
    if (this.#perUser) this.perUser.set(simulated.event.userId, (this.perUser.get(simulated.event.userId) ?? 0) + 1);
    if (simulated.kind === 'search') {
      this.searches++;
      if (simulated.event.clickedItemUri !== '') this.clickedSearches++;
      return;
    }
    const play = simulated.event;
    this.plays++;
    if (play.endReason === 'END_REASON_SKIPPED_FORWARD' || play.endReason === 'END_REASON_SKIPPED_BACKWARD') this.skips++;
    else if (play.endReason === 'END_REASON_COMPLETED') this.completions++;
    else if (play.endReason === 'END_REASON_USER_STOPPED') this.userStops++;
    this.byContext.set(play.context, (this.byContext.get(play.context) ?? 0) + 1);
    this.byItemKind.set(play.itemKind, (this.byItemKind.get(play.itemKind) ?? 0) + 1);
  }

  get skipRate(): number {
    return this.plays === 0 ? 0 : this.skips / this.plays;
  }

  get searchShare(): number {
    return this.events === 0 ? 0 : this.searches / this.events;
  }

  get clickedShare(): number {
    return this.searches === 0 ? 0 : this.clickedSearches / this.searches;
  }

  /** Share of all events produced by the most active `fraction` of `totalUsers` (needs `perUser`). */
  topUserShare(fraction: number, totalUsers = this.perUser.size): number {
    if (this.events === 0) return 0;
    const counts = [...this.perUser.values()].sort((a, b) => b - a);
    const top = Math.max(1, Math.round(totalUsers * fraction));
    let sum = 0;
    for (let i = 0; i < top && i < counts.length; i++) sum += counts[i]!;
    return sum / this.events;
  }

  /** One line for humans. */
  summary(): string {
    const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
    return (
      `${this.events} events: ${this.plays} plays (${pct(this.skipRate)} skipped, ` +
      `${pct(this.plays === 0 ? 0 : this.completions / this.plays)} completed), ` +
      `${this.searches} searches (${pct(this.searchShare)} of events, ${pct(this.clickedShare)} clicked)`
    );
  }
}
