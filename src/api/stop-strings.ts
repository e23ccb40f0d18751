/**
 * Stop strings (`stop_strings` of transformers' GenerationConfig): generation of a sequence ends once its new
 * text contains one of them, also when the match is split over several tokens.
 *
 * The matcher sees the text incrementally and keeps only the last (longest stop length − 1) characters, so a
 * push costs O(pushed text + longest stop length) per stop string, independent of how long the sequence is.
 */
import { ConfigError } from '../errors.js';

export class StopStringMatcher {
  private readonly stops: string[];
  private readonly keep: number;
  private tail = '';
  private found: string | null = null;

  constructor(stopStrings: string[]) {
    if (!Array.isArray(stopStrings)) throw new ConfigError(`stop_strings must be a list of strings, got ${typeof stopStrings}`);
    for (const s of stopStrings) {
      if (typeof s !== 'string' || s.length === 0) {
        throw new ConfigError(`stop_strings must be non-empty strings, got ${JSON.stringify(s)}`);
      }
    }
    this.stops = [...new Set(stopStrings)];
    this.keep = this.stops.reduce((m, s) => Math.max(m, s.length), 0) - 1;
  }

  /** The stop string that matched, or null. */
  get matched(): string | null {
    return this.found;
  }

  /** Whether any stop string was matched (stays true after the first match, until `reset`). */
  get done(): boolean {
    return this.found !== null;
  }

  /**
   * Feeds newly decoded text of one sequence; true once the text pushed so far (since construction or the last
   * `reset`) contains any stop string.
   */
  push(text: string): boolean {
    if (this.found !== null) return true;
    if (this.stops.length === 0 || text.length === 0) return false;
    const window = this.tail + text;
    for (const s of this.stops) {
      if (window.includes(s)) {
        this.found = s;
        this.tail = '';
        return true;
      }
    }
    this.tail = this.keep > 0 ? window.slice(-this.keep) : '';
    return false;
  }

  /** Forgets the text seen so far (for the next sequence). */
  reset(): void {
    this.tail = '';
    this.found = null;
  }
}
