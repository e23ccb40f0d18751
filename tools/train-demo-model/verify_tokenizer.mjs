// Checks the exported tokenizer with the Rust library (Node binding):
//   node verify_tokenizer.mjs <model dir> <data dir> <samples.json>
//  - special tokens at ids 0/1/2, vocab size 4096, <s> prepended by the post-processor;
//  - decode(encode(x)) == x on a few strings and on the held-out passage;
//  - eval/heldout.txt encodes to exactly the ids the PyTorch eval used;
//  - the Python-side byte-level decoder (llama.ByteLevelDecoder) agrees with the Rust decoder on
//    every generated sample.
import fs from 'node:fs';
import path from 'node:path';
import tk from '@anush008/tokenizers';

const [modelDir, dataDir, samplesPath] = process.argv.slice(2);
const tok = tk.Tokenizer.fromFile(path.join(modelDir, 'tokenizer.json'));
const fail = (m) => { console.error(`FAIL: ${m}`); process.exit(1); };

const want = { '<unk>': 0, '<s>': 1, '</s>': 2 };
for (const [t, id] of Object.entries(want)) if (tok.tokenToId(t) !== id) fail(`${t} is not id ${id}`);
if (tok.getVocabSize(true) !== 4096) fail(`vocab size ${tok.getVocabSize(true)}`);

const heldout = fs.readFileSync(path.join(modelDir, 'eval', 'heldout.txt'), 'utf8');
const strings = ['In the beginning God created the heaven and the earth.', 'And the LORD said unto Moses,',
  'Blessed are', ' leading space', 'tabs\tand\r\nCRLF  ', "Ünïcödé, 日本語 and emoji 🙂🙏", '', heldout];
for (const s of strings) {
  const enc = await tok.encode(s, null, { addSpecialTokens: true });
  const ids = enc.getIds();
  if (ids[0] !== 1) fail(`no <s> in front of ${JSON.stringify(s.slice(0, 40))}`);
  if (ids.includes(0)) fail('an <unk> was produced');
  const back = await tok.decode(ids, true);
  if (back !== s) fail(`round trip: ${JSON.stringify(s.slice(0, 60))} -> ${JSON.stringify(back.slice(0, 60))}`);
  if (s.length < 80) console.log(`${JSON.stringify(s)} -> ${ids.length} ids ${JSON.stringify(enc.getTokens())}`);
}

const evalIds = JSON.parse(fs.readFileSync(path.join(dataDir, 'heldout_ids.json'), 'utf8'));
const heldIds = (await tok.encode(heldout, null, { addSpecialTokens: true })).getIds();
if (JSON.stringify(heldIds) !== JSON.stringify(evalIds)) fail('eval/heldout.txt does not encode to the evaluated ids');
const evalJson = JSON.parse(fs.readFileSync(path.join(modelDir, 'eval', 'pytorch.json'), 'utf8'));
if (evalJson.num_tokens !== heldIds.length) fail('eval/pytorch.json num_tokens mismatch');
console.log(`eval/heldout.txt: ${heldIds.length} tokens, matches the PyTorch eval input`);

const samples = JSON.parse(fs.readFileSync(samplesPath, 'utf8'));
let n = 0;
for (const s of [...samples.greedy, ...samples.sampled]) {
  const text = await tok.decode(s.ids, true);
  if (text !== s.text) fail(`decoder mismatch: ${JSON.stringify(text)} vs ${JSON.stringify(s.text)}`);
  n++;
}
console.log(`Rust decoder == Python decoder on ${n} samples`);
console.log('tokenizer OK');
