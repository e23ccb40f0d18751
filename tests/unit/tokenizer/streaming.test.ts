// IncrementalDecoder on real tokenizers: for seeded random id sequences (and real text), the pushed chunks plus
// the flush must be exactly the Rust library's decode of all ids, each chunk must be final (every prefix of the
// stream is a prefix of the full decode, so no U+FFFD is emitted early), and the work per push must stay small.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tokenizer as RustTokenizer } from '@anush008/tokenizers';
import { IncrementalDecoder } from '../../../src/tokenizer/streaming.js';
import { rng } from '../../helpers/random.js';
import { rust } from '../../helpers/rust-tokenizers.js';
import { loadTokenizerFiles, type TokenizerName } from '../../helpers/tokenizer-files.js';

const NAMES: TokenizerName[] = ['llama2', 'llama3', 'qwen3', 'gemma3', 'gpt2', 'mistral', 'bert', 't5'];
const SEQUENCES = 300;
const MAX_LENGTH = 48;
const TIMEOUT = 60_000;

const TEXT =
  'Hello world! Streaming text: naïve café, 日本語のテキスト, 한국어, emoji 😀👍🏽🧑🏿‍💻, math ∑√∞, ' +
  'rare script ᚠᛇᚻ ꦲꦏ𐌰𐌱, spaces   and\ttabs\nnew lines, "quotes" and don\'t .';

interface Subject {
  tokenizer: RustTokenizer;
  /** Rust's decode (its decoder over its id → token map), synchronous, for the IncrementalDecoder. */
  decode: (ids: number[]) => string;
  idToToken: (id: number) => string | undefined;
  idCount: number;
  /** Ids of tokens that make decoding hard: byte tokens, partial UTF-8, "▁"-only, "##" pieces, special tokens. */
  odd: number[];
}

const subjects = new Map<TokenizerName, Promise<Subject>>();

function subject(name: TokenizerName): Promise<Subject> {
  let s = subjects.get(name);
  if (!s) subjects.set(name, (s = load(name)));
  return s;
}

async function load(name: TokenizerName): Promise<Subject> {
  const tokenizer = rust.Tokenizer.fromString(loadTokenizerFiles(name).json);
  const decoder = tokenizer.getDecoder();
  const idCount = tokenizer.getVocabSize(true);
  const tokens: Array<string | undefined> = [];
  for (let id = 0; id < idCount; id++) tokens.push(tokenizer.idToToken(id) ?? undefined);
  const idToToken = (id: number) => tokens[id];
  const decode = (ids: number[]) => {
    const list = ids.map(idToToken).filter((t): t is string => t !== undefined);
    return decoder ? decoder.decode(list) : list.join(' ');
  };
  const odd: number[] = [];
  tokens.forEach((t, id) => {
    if (t === undefined) return;
    if (
      /^<0x[0-9A-F]{2}>$/.test(t) ||
      /^[▁ Ġ]+$/.test(t) ||
      t.startsWith('##') ||
      /[\u0080-\u00bf\u00c2-\u00f4\u0100-\u0143]$/.test(t) ||
      /^[<[].*[>\]]$/.test(t) ||
      /[\ufffd.,!?']/.test(t)
    ) {
      odd.push(id);
    }
  });
  return { tokenizer, decode, idToToken, idCount, odd };
}

function randomIds(s: Subject, seed: number): number[][] {
  const r = rng(seed);
  const out: number[][] = [];
  for (let i = 0; i < SEQUENCES; i++) {
    const n = 1 + Math.floor(r() * MAX_LENGTH);
    const ids: number[] = [];
    // Some sequences are mostly odd tokens, so byte runs and partial characters pile up.
    const oddShare = i % 3 === 0 ? 0.8 : 0.35;
    for (let k = 0; k < n; k++) {
      ids.push(r() < oddShare ? s.odd[Math.floor(r() * s.odd.length)] : Math.floor(r() * s.idCount));
    }
    out.push(ids);
  }
  return out;
}

/** Streams `ids`; returns the chunks (the flush last) and how many ids were decoded in all. */
function stream(s: Subject, ids: number[], options: { prefixIds?: number[]; hint?: boolean } = {}) {
  let decodedIds = 0;
  const decode = (window: number[]) => {
    decodedIds += window.length;
    return s.decode(window);
  };
  const d = new IncrementalDecoder(decode, {
    prefixIds: options.prefixIds,
    idToToken: options.hint === false ? undefined : s.idToToken,
  });
  const chunks = ids.map((id) => d.push(id));
  chunks.push(d.flush());
  return { chunks, decodedIds };
}

/** Describes the first problem with `chunks` as a stream of `expected`, or returns null. */
function problem(chunks: string[], expected: string): string | null {
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i];
    if (expected.slice(at, at + c.length) !== c) {
      return `chunk ${i} ${JSON.stringify(c)} at ${at} is not final: the decode there is ${JSON.stringify(expected.slice(at, at + c.length + 4))}`;
    }
    for (let k = 0; k < c.length; k++) {
      if (c.charCodeAt(k) === 0xfffd && expected.charCodeAt(at + k) !== 0xfffd) return `U+FFFD too early in chunk ${i}`;
    }
    at += c.length;
  }
  return at === expected.length ? null : `the stream stops at ${at} of ${expected.length}: ${JSON.stringify(expected.slice(at))} missing`;
}

for (const name of NAMES) {
  describe(`${name}: streamed text is the full decode`, () => {
    let s: Subject;
    beforeAll(async () => {
      s = await subject(name);
    }, TIMEOUT);

    it('random id sequences', { timeout: TIMEOUT }, async () => {
      const lists = randomIds(s, 7000 + NAMES.indexOf(name));
      const full = await s.tokenizer.decodeBatch(lists, false);
      const bad: string[] = [];
      let pushes = 0;
      let work = 0;
      lists.forEach((ids, i) => {
        const { chunks, decodedIds } = stream(s, ids);
        pushes += ids.length;
        work += decodedIds;
        const p = problem(chunks, full[i]);
        if (p && bad.length < 3) bad.push(`${p}\n  ids ${JSON.stringify(ids)}\n  tokens ${JSON.stringify(ids.map(s.idToToken))}`);
      });
      expect(bad).toEqual([]);
      expect(work / pushes).toBeLessThan(12); // ids decoded per push: the window stays small
    });

    it('real text, with and without the byte-token hint, and after a prompt', { timeout: TIMEOUT }, async () => {
      const ids = (await s.tokenizer.encode(TEXT, null, { addSpecialTokens: false })).getIds();
      const full = await s.tokenizer.decode(ids, false);
      expect(problem(stream(s, ids).chunks, full)).toBeNull();
      expect(problem(stream(s, ids, { hint: false }).chunks, full)).toBeNull();

      // After a prompt, the stream is what the generated ids add to the prompt's decode.
      const prompt = (await s.tokenizer.encode('The answer is', null, { addSpecialTokens: true })).getIds();
      const promptText = await s.tokenizer.decode(prompt, false);
      const both = await s.tokenizer.decode([...prompt, ...ids], false);
      expect(both.startsWith(promptText)).toBe(true);
      expect(problem(stream(s, ids, { prefixIds: prompt }).chunks, both.slice(promptText.length))).toBeNull();
    });

    it('long streams cost O(window) per push', { timeout: TIMEOUT }, async () => {
      const one = (await s.tokenizer.encode(TEXT, null, { addSpecialTokens: false })).getIds();
      const ids = Array.from({ length: 40 }, () => one).flat();
      const { chunks, decodedIds } = stream(s, ids);
      expect(problem(chunks, await s.tokenizer.decode(ids, false))).toBeNull();
      expect(decodedIds / ids.length).toBeLessThan(8);
    });
  });
}

describe('held-back text', () => {
  let llama: Subject;
  let gpt2: Subject;
  beforeAll(async () => {
    [llama, gpt2] = await Promise.all([subject('llama2'), subject('gpt2')]);
  }, TIMEOUT);

  const idOf = (s: Subject, token: string) => s.tokenizer.tokenToId(token)!;

  it('a byte-fallback character comes out whole, once its run ends', () => {
    const d = new IncrementalDecoder(llama.decode, { idToToken: llama.idToToken });
    const euro = ['<0xE2>', '<0x82>', '<0xAC>'].map((t) => idOf(llama, t));
    expect(d.push(idOf(llama, '▁price'))).toBe('price');
    expect(euro.map((id) => d.push(id))).toEqual(['', '', '']);
    expect(d.push(idOf(llama, '▁now'))).toBe('€ now');
    expect(d.flush()).toBe('');
  });

  it('a run that turns invalid becomes U+FFFD for every byte, as in the full decode', () => {
    const d = new IncrementalDecoder(llama.decode, { idToToken: llama.idToToken });
    const run = ['<0x41>', '<0xE2>'].map((t) => idOf(llama, t));
    const chunks = [...run.map((id) => d.push(id)), d.push(idOf(llama, '▁b')), d.flush()];
    expect(chunks.join('')).toBe('\ufffd\ufffd b');
    expect(chunks.join('')).toBe(llama.decode([...run, idOf(llama, '▁b')]));
  });

  it('a byte-level character split over tokens waits for its last byte; a lone bad byte shows at flush', () => {
    const d = new IncrementalDecoder(gpt2.decode);
    // "€" is E2 82 AC: "â" is E2, "Ĥ" is 82, "¬" is AC.
    expect(d.push(idOf(gpt2, 'Hello'))).toBe('Hello');
    expect(d.push(idOf(gpt2, 'Ġâ'))).toBe(' ');
    expect(d.push(idOf(gpt2, 'Ĥ'))).toBe('');
    expect(d.push(idOf(gpt2, '¬'))).toBe('€');
    expect(d.push(idOf(gpt2, 'â'))).toBe('');
    expect(d.flush()).toBe('\ufffd');
  });

  it('keeps the window short when every token ends in half a character', () => {
    let work = 0;
    const d = new IncrementalDecoder(
      (ids) => {
        work += ids.length;
        return gpt2.decode(ids);
      },
      { idToToken: gpt2.idToToken },
    );
    const lead = idOf(gpt2, 'â');
    const chunks = Array.from({ length: 500 }, () => d.push(lead));
    chunks.push(d.flush());
    expect(chunks.join('')).toBe('\ufffd'.repeat(500));
    expect(work / 500).toBeLessThan(8);
  });

  it('a long byte-fallback run is decoded once, when it ends', () => {
    let calls = 0;
    const d = new IncrementalDecoder(
      (ids) => {
        calls++;
        return llama.decode(ids);
      },
      { idToToken: llama.idToToken },
    );
    const bytes = Array.from(new TextEncoder().encode('ᚠᛇᚻ'.repeat(100)), (b) => idOf(llama, `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
    const out = bytes.map((id) => d.push(id));
    expect(out.join('')).toBe('');
    expect(calls).toBe(0);
    expect(d.push(idOf(llama, '▁end'))).toBe(`${'ᚠᛇᚻ'.repeat(100)} end`);
  });

  it('starts afresh after flush', () => {
    const d = new IncrementalDecoder(llama.decode, { idToToken: llama.idToToken });
    expect(d.push(idOf(llama, '▁Hello'))).toBe('Hello');
    expect(d.flush()).toBe('');
    expect(d.push(idOf(llama, '▁again'))).toBe('again');
  });

  it('keeps a byte run at the end of the prompt whole, for generated bytes that continue it', () => {
    const bytes = (text: string) =>
      Array.from(new TextEncoder().encode(text), (b) => idOf(llama, `<0x${b.toString(16).toUpperCase()}>`));
    const prompt = [idOf(llama, '▁price'), ...bytes('€€€€€€€')];
    const generated = [...bytes('€'), idOf(llama, '▁now')];
    const d = new IncrementalDecoder(llama.decode, { prefixIds: prompt, idToToken: llama.idToToken });
    const chunks = [...generated.map((id) => d.push(id)), d.flush()];
    expect(chunks.join('')).toBe('€ now');
  });

  it('takes the space of the first token from the prompt', () => {
    const prompt = [idOf(llama, '▁Hello')];
    const d = new IncrementalDecoder(llama.decode, { prefixIds: prompt, idToToken: llama.idToToken });
    expect(d.push(idOf(llama, '▁world'))).toBe(' world');
    expect(new IncrementalDecoder(llama.decode).push(idOf(llama, '▁world'))).toBe('world');
  });
});
