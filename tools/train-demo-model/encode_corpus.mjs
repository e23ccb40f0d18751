// Tokenizes the corpus with the trained tokenizer.json (Rust tokenizers via the Node binding), so
// the Python side never needs a tokenizer implementation of its own (it only decodes, see llama.py).
//
//   node encode_corpus.mjs <corpus dir> <tokenizer.json> <out dir>
//
// Writes to <out dir>:
//   train.bin, val.bin : uint16 little-endian token ids. Each chapter is
//                        encode(chapter, add_special_tokens=true) + [</s>], i.e. <s> chapter </s>.
//   heldout.txt        : the fixed evaluation passage: the first validation chapters (Genesis 20,
//                        Genesis 40, ...) joined with "\n", as many whole chapters as keep it
//                        within 4,000 tokens.
//   heldout_ids.json   : encode(heldout.txt, add_special_tokens=true).
//   prompts.json       : the sample prompts and their ids (add_special_tokens=true).
import fs from 'node:fs';
import path from 'node:path';
import tk from '@anush008/tokenizers';

const [corpusDir, tokPath, outDir] = process.argv.slice(2);
fs.mkdirSync(outDir, { recursive: true });
const tok = tk.Tokenizer.fromFile(tokPath);
const EOS = tok.tokenToId('</s>');

async function ids(text, addSpecialTokens = true) {
  return (await tok.encode(text, null, { addSpecialTokens })).getIds();
}

for (const split of ['train', 'val']) {
  const docs = fs.readFileSync(path.join(corpusDir, `${split}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const all = [];
  for (const d of docs) all.push(...(await ids(d)), EOS);
  const buf = Buffer.alloc(all.length * 2);
  all.forEach((id, i) => buf.writeUInt16LE(id, i * 2));
  fs.writeFileSync(path.join(outDir, `${split}.bin`), buf);
  console.log(`${split}: ${docs.length} chapters, ${all.length} tokens`);

  if (split === 'val') {
    let heldout = docs[0];
    for (const d of docs.slice(1)) {
      const next = `${heldout}\n${d}`;
      if ((await ids(next)).length > 4000) break;
      heldout = next;
    }
    const hIds = await ids(heldout);
    fs.writeFileSync(path.join(outDir, 'heldout.txt'), heldout);
    fs.writeFileSync(path.join(outDir, 'heldout_ids.json'), JSON.stringify(hIds));
    console.log(`heldout: ${heldout.length} chars, ${hIds.length} tokens (incl. <s>)`);
  }
}

const prompts = ['In the beginning', 'And the LORD said unto Moses,', 'Blessed are', 'The LORD is my shepherd;', 'And Jesus answered and said unto them,'];
const out = [];
for (const p of prompts) out.push({ prompt: p, ids: await ids(p) });
fs.writeFileSync(path.join(outDir, 'prompts.json'), JSON.stringify(out, null, 1));

// Round-trip checks with the Rust library itself.
const checks = ['In the beginning God created the heaven and the earth.', '  two  spaces\nand a newline\n',
  "Thou shalt not kill. 1234 -- (O LORD!) what's this? café ünïcödé 日本語 🙂", ''];
for (const s of checks) {
  const e = await ids(s, false);
  const d = await tok.decode(e, false);
  if (d !== s) throw new Error(`round trip failed: ${JSON.stringify(s)} -> ${JSON.stringify(d)}`);
  const withBos = await ids(s, true);
  if (withBos[0] !== 1 || withBos.length !== e.length + 1) throw new Error('missing <s>');
}
console.log('tokenizer round trips OK; "In the beginning" ->', JSON.stringify((await tok.encode('In the beginning')).getTokens()));
