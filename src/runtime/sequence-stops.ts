/**
 * When each sequence of a generate() call is finished: at an EOS id, or at the token that completes one of the
 * stop strings (decoded incrementally with the tokenizer). Later ids of a finished sequence become the pad id.
 * Shared by the in-thread loop (causal-lm.ts) and the Worker engine's page side (worker/remote-model.ts), which
 * must stop at exactly the same token.
 */
import { StopStringMatcher } from '../api/stop-strings.js';
import { IncrementalDecoder } from '../tokenizer/streaming.js';
import type { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';

export class SequenceStops {
  private readonly finished: boolean[];
  private readonly eos: Set<number>;
  private readonly pad: number;
  private readonly matchers: StopStringMatcher[] | null;
  private readonly decoders: IncrementalDecoder[] | null;

  /**
   * `rows`: every sequence's ids so far (the prompt, `promptLength` ids per row); `step` appends to them.
   * `tokenizer` is needed when there are stop strings.
   */
  constructor(
    readonly rows: number[][],
    promptLength: number,
    gen: { eosTokenIds: readonly number[]; padTokenId: number | null; stopStrings: readonly string[] },
    tokenizer?: PreTrainedTokenizer,
  ) {
    this.finished = rows.map(() => false);
    this.eos = new Set(gen.eosTokenIds);
    this.pad = gen.padTokenId ?? gen.eosTokenIds[0] ?? 0;
    const tok = tokenizer;
    this.matchers = gen.stopStrings.length > 0 && tok ? rows.map(() => new StopStringMatcher([...gen.stopStrings])) : null;
    this.decoders =
      this.matchers && tok
        ? rows.map(
            (row) =>
              new IncrementalDecoder((ids) => tok.decode(ids, { skip_special_tokens: true }), {
                prefixIds: row.slice(0, promptLength),
                idToToken: (id) => tok.id_to_token(id),
              }),
          )
        : null;
  }

  /** The step's ids, those of finished sequences replaced by the pad id, appended to the rows. */
  step(ids: ArrayLike<number>): number[] {
    const next = Array.from(ids, (id, b) => (this.finished[b] ? this.pad : id));
    next.forEach((id, b) => this.rows[b]!.push(id));
    return next;
  }

  /** Marks the sequences this step's ids finish; true once every sequence has finished. */
  check(next: readonly number[]): boolean {
    next.forEach((id, b) => {
      if (this.finished[b]) return;
      if (this.eos.has(id)) this.finished[b] = true;
      else if (this.matchers && this.matchers[b]!.push(this.decoders![b]!.push(id))) this.finished[b] = true;
    });
    return this.finished.every(Boolean);
  }
}
