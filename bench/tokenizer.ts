// Tokenizer encode throughput under Node: webslm against transformers.js and the Rust `tokenizers` library
// (native binding, one call per document, so one thread). Deterministic ~1 MB of mixed text: generated English
// prose, code, CJK and emoji. Each implementation's ids are checked against Rust's first; one that disagrees
// gets the disagreement reported instead of a speed.
//   npx vite build --config bench/tokenizer.vite.config.ts && node dist-bench/tokenizer.mjs [--all] [--json FILE]
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PreTrainedTokenizer } from '../src/tokenizer/tokenizer.js';
import { rng } from '../tests/helpers/random.js';
import { rust } from '../tests/helpers/rust-tokenizers.js';
import { TOKENIZER_NAMES, loadTokenizerFiles, type TokenizerName } from '../tests/helpers/tokenizer-files.js';

export const IMPLEMENTATIONS = ['webslm', 'transformers.js', 'rust'] as const;
export type Implementation = (typeof IMPLEMENTATIONS)[number];

export interface TokenizerBenchRow {
  tokenizer: string;
  impl: Implementation;
  /** UTF-8 bytes encoded per second / 1e6, median of the runs; null when the ids disagree with Rust's. */
  mbPerS: number | null;
  /** Tokens of the whole text (Rust's count). */
  tokens: number;
  /** Time to build the tokenizer from tokenizer.json, ms. */
  loadMs: number;
  /** Documents whose ids differ from Rust's (0 for Rust itself). */
  disagreements: number;
  /** First difference, when there is one. */
  firstDifference?: string;
}

export interface TokenizerBenchOptions {
  names?: readonly TokenizerName[];
  /** Timed runs per implementation (after one warm-up run). */
  runs?: number;
  /** Size of the text in UTF-8 bytes. */
  bytes?: number;
}

export const DEFAULT_NAMES: readonly TokenizerName[] = ['llama3', 'qwen3', 'gemma3', 'bert'];

// ── the text ───────────────────────────────────────────────────────────────────────────────────────────────

const NOUNS =
  'time year people way day man thing woman life child world school state family student group country problem hand part place case week company system program question work government number night point home water room mother area money story fact month lot right study book eye job word business issue side kind head house service friend father power hour game line end member law car city community name president team minute idea kid body information back parent face others level office door health person art war history party result change morning reason research girl guy moment air teacher force education'.split(
    ' ',
  );
const VERBS =
  'is was has said made found took gave told asked seemed felt tried left called kept began showed heard played ran moved lived believed brought happened wrote provided sat stood lost paid met included continued set learned changed led understood watched followed stopped created spoke read allowed added spent grew opened walked won offered remembered loved considered appeared bought waited served died sent expected built stayed fell cut reached killed remained'.split(
    ' ',
  );
const ADJECTIVES =
  'other new good high old great big small large long young important few public bad same able last early little right different local late hard major better economic strong possible whole free military true federal international full special easy clear recent certain personal open red difficult available likely short single medical current wrong private past foreign fine common poor natural significant similar hot dead central happy serious ready simple left physical general environmental financial blue democratic dark various entire close legal religious cold final main green nice huge popular traditional cultural'.split(
    ' ',
  );
const ADVERBS = 'quickly slowly really just also very often never always sometimes usually already still quite almost'.split(' ');
const CONNECTORS = ['and', 'but', 'because', 'so', 'while', 'although', 'when', 'after', 'before', 'since', 'until', 'if'];
const NAMES = ['Alice', 'Bob', 'Mr. Smith', 'Dr. Jones', 'Paris', 'London', 'the United States', 'New York', 'Tokyo', 'Maria'];
const CJK = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持音'.split(
    '',
  );
const KANA = 'あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんアイウエオカキクケコサシスセソタチツテト'.split('');
const EMOJI = ['😀', '🤗', '👍', '🎉', '🚀', '❤️', '🔥', '✨', '🙏', '😂', '👍🏽', '👨‍👩‍👧', '🇯🇵', '🤔', '✅'];

function englishParagraph(r: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const phrase = () => `the ${r() < 0.4 ? `${pick(ADJECTIVES)} ` : ''}${pick(NOUNS)}${r() < 0.2 ? 's' : ''}`;
  const sentences: string[] = [];
  for (let n = 3 + Math.floor(r() * 5); n > 0; n--) {
    let s = `${phrase()} ${r() < 0.2 ? `${pick(ADVERBS)} ` : ''}${pick(VERBS)} ${phrase()}`;
    if (r() < 0.4) s += ` ${pick(CONNECTORS)} ${pick(NAMES)} ${pick(VERBS)} ${phrase()}`;
    if (r() < 0.15) s += ` in ${1900 + Math.floor(r() * 125)}`;
    if (r() < 0.1) s += `, which ${r() < 0.5 ? "didn't" : "wasn't"} ${pick(['surprise', 'help', 'matter', 'last'])}`;
    if (r() < 0.08) s += ` (about ${String(Math.floor(r() * 10000)).replace(/\B(?=(\d{3})+$)/g, ',')} of them)`;
    if (r() < 0.05) s += ` ${pick(EMOJI)}`;
    s = s[0].toUpperCase() + s.slice(1) + pick(['.', '.', '.', '.', '!', '?']);
    if (r() < 0.1) s = `"${s}" ${pick(NAMES)} said.`;
    sentences.push(s);
  }
  return sentences.join(' ');
}

function codeBlock(r: () => number): string {
  const name = () => `${NOUNS[Math.floor(r() * NOUNS.length)]}${r() < 0.5 ? 'Count' : 'Value'}`;
  const a = name();
  const b = name();
  const n = Math.floor(r() * 100);
  return r() < 0.5
    ? `def update_${a.toLowerCase()}(${a}, ${b}=None):\n    """Return the new ${a}."""\n    if ${b} is None:\n        ${b} = {}\n    for i in range(${n}):\n        ${a} += ${b}.get(i, 0) * 2\n    return ${a}\n`
    : `export function ${a}(${b}: number[]): number {\n  let total = 0;\n  for (const x of ${b}) {\n    if (x > ${n}) total += x % 7;\n  }\n  return total; // ${n} is the cutoff\n}\n`;
}

function cjkParagraph(r: () => number): string {
  let s = '';
  for (let n = 40 + Math.floor(r() * 80); n > 0; n--) {
    const x = r();
    s += x < 0.75 ? CJK[Math.floor(r() * CJK.length)] : x < 0.9 ? KANA[Math.floor(r() * KANA.length)] : x < 0.97 ? '，' : '。';
  }
  return s;
}

/** Documents of about 4 KB, about `bytes` UTF-8 bytes in all: 80% English, 10% code, 7% CJK, emoji throughout. */
export function benchDocuments(bytes = 1 << 20, seed = 42): string[] {
  const r = rng(seed);
  const encoder = new TextEncoder();
  const docs: string[] = [];
  let total = 0;
  while (total < bytes) {
    const parts: string[] = [];
    let size = 0;
    while (size < 4096) {
      const x = r();
      const part = x < 0.8 ? englishParagraph(r) : x < 0.9 ? codeBlock(r) : x < 0.97 ? cjkParagraph(r) : EMOJI.slice(0, 1 + Math.floor(r() * 8)).join(' ');
      parts.push(part);
      size += encoder.encode(part).length + 2;
    }
    const doc = parts.join('\n\n');
    docs.push(doc);
    total += encoder.encode(doc).length;
  }
  return docs;
}

// ── the implementations ────────────────────────────────────────────────────────────────────────────────────

interface Encoder {
  loadMs: number;
  encode(text: string): number[] | Promise<number[]>;
}

async function webslmEncoder(name: TokenizerName): Promise<Encoder> {
  const { json, config } = loadTokenizerFiles(name);
  const t0 = performance.now();
  const tok = PreTrainedTokenizer.fromJSON(json, config);
  return { loadMs: performance.now() - t0, encode: (text) => tok.encode(text, { add_special_tokens: false }) };
}

async function transformersEncoder(name: TokenizerName): Promise<Encoder> {
  const transformers = await import('@huggingface/transformers');
  transformers.env.allowRemoteModels = false;
  const { json, config } = loadTokenizerFiles(name);
  // What AutoTokenizer does after downloading: the class named by tokenizer_config.json, else the base class.
  const className = typeof config.tokenizer_class === 'string' ? config.tokenizer_class.replace(/Fast$/, '') : '';
  const classes = transformers as unknown as Record<string, typeof transformers.PreTrainedTokenizer | undefined>;
  const Tokenizer = classes[className] ?? transformers.PreTrainedTokenizer;
  const t0 = performance.now();
  const tok = new Tokenizer(JSON.parse(json), config);
  return { loadMs: performance.now() - t0, encode: (text) => tok.encode(text, { add_special_tokens: false }) };
}

async function rustEncoder(name: TokenizerName): Promise<Encoder> {
  const { json } = loadTokenizerFiles(name);
  const t0 = performance.now();
  const tok = rust.Tokenizer.fromString(json);
  return {
    loadMs: performance.now() - t0,
    encode: async (text) => (await tok.encode(text, null, { addSpecialTokens: false })).getIds(),
  };
}

const MAKERS: Record<Implementation, (name: TokenizerName) => Promise<Encoder>> = {
  webslm: webslmEncoder,
  'transformers.js': transformersEncoder,
  rust: rustEncoder,
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function describeDifference(doc: number, a: number[], b: number[]): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `document ${doc}, token ${i}: ${JSON.stringify(a.slice(i, i + 5))} vs Rust ${JSON.stringify(b.slice(i, i + 5))}`;
}

export async function runTokenizerBench(options: TokenizerBenchOptions = {}): Promise<TokenizerBenchRow[]> {
  const names = options.names ?? DEFAULT_NAMES;
  const runs = options.runs ?? 5;
  const docs = benchDocuments(options.bytes);
  const bytes = docs.reduce((n, d) => n + new TextEncoder().encode(d).length, 0);
  const rows: TokenizerBenchRow[] = [];
  for (const name of names) {
    const encoders = new Map<Implementation, Encoder>();
    for (const impl of IMPLEMENTATIONS) encoders.set(impl, await MAKERS[impl](name));
    const reference: number[][] = [];
    for (const doc of docs) reference.push(await encoders.get('rust')!.encode(doc));
    const tokens = reference.reduce((n, ids) => n + ids.length, 0);
    for (const impl of IMPLEMENTATIONS) {
      const encoder = encoders.get(impl)!;
      // The agreement check is also the warm-up run.
      let disagreements = 0;
      let firstDifference: string | undefined;
      for (let d = 0; d < docs.length; d++) {
        const ids = await encoder.encode(docs[d]);
        if (ids.length === reference[d].length && ids.every((id, i) => id === reference[d][i])) continue;
        disagreements++;
        firstDifference ??= describeDifference(d, ids, reference[d]);
      }
      let mbPerS: number | null = null;
      if (disagreements === 0) {
        const times: number[] = [];
        for (let run = 0; run < runs; run++) {
          const t0 = performance.now();
          for (const doc of docs) await encoder.encode(doc);
          times.push(performance.now() - t0);
        }
        mbPerS = bytes / median(times) / 1e3;
      }
      rows.push({ tokenizer: name, impl, mbPerS, tokens, loadMs: encoder.loadMs, disagreements, firstDifference });
    }
  }
  return rows;
}

export function tokenizerTable(rows: TokenizerBenchRow[], documents: number): string {
  const cell = (r: TokenizerBenchRow | undefined) =>
    !r ? '–' : r.mbPerS === null ? `ids differ on ${r.disagreements}/${documents} docs` : r.mbPerS.toFixed(2);
  const lines = [
    '| tokenizer | tokens | webslm MB/s | transformers.js MB/s | Rust MB/s | webslm / Rust | load ms (webslm / transformers.js / Rust) |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const name of [...new Set(rows.map((r) => r.tokenizer))]) {
    const by = (impl: Implementation) => rows.find((r) => r.tokenizer === name && r.impl === impl);
    const [ours, tjs, native] = IMPLEMENTATIONS.map(by);
    const ratio = ours?.mbPerS && native?.mbPerS ? `${(ours.mbPerS / native.mbPerS).toFixed(2)}×` : '–';
    const load = IMPLEMENTATIONS.map((impl) => by(impl)?.loadMs.toFixed(0) ?? '–').join(' / ');
    lines.push(`| ${name} | ${ours?.tokens ?? '–'} | ${cell(ours)} | ${cell(tjs)} | ${cell(native)} | ${ratio} | ${load} |`);
  }
  const differences = rows.filter((r) => r.firstDifference).map((r) => `- ${r.tokenizer} ${r.impl}: ${r.firstDifference}`);
  return [...lines, ...(differences.length ? ['', 'First differences:', ...differences] : [])].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const names = args.includes('--all') ? TOKENIZER_NAMES : DEFAULT_NAMES;
  const docs = benchDocuments();
  const bytes = docs.reduce((n, d) => n + new TextEncoder().encode(d).length, 0);
  console.log(`encode throughput, ${(bytes / 1e6).toFixed(2)} MB of mixed text in ${docs.length} documents, add_special_tokens: false\n`);
  const rows = await runTokenizerBench({ names });
  console.log(tokenizerTable(rows, docs.length));
  if (jsonAt >= 0) {
    writeFileSync(args[jsonAt + 1], JSON.stringify({ date: new Date().toISOString(), bytes, documents: docs.length, rows }, null, 2));
    console.log(`\nwrote ${args[jsonAt + 1]}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
