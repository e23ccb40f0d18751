// Trains the byte-level BPE tokenizer with the Rust HF `tokenizers` library through its Node
// binding (@anush008/tokenizers, in the repo's node_modules).
//
//   node train_tokenizer.mjs <train.txt> <out tokenizer.json> [vocab_size=4096]
//
// The binding exposes `Tokenizer.train(files)` but no way to configure the trainer (its `Trainer`
// class has no constructor), so training runs the model's default BpeTrainer: vocab_size 30000,
// min_frequency 0, no special tokens. On this corpus it merges until no pair is left (~20.7k
// tokens). A BPE merge list is ordered and every prefix of it is itself a complete BPE model, so
// we keep the first (vocab_size - 3 - 256) merges: exactly what BpeTrainer{vocab_size} would have
// learnt, since the trainer's merge order does not depend on the target size.
//
// Final vocabulary (ids):
//   0 <unk>, 1 <s>, 2 </s>                    special tokens, as in Llama-2
//   3..258                                    the 256 ByteLevel byte symbols (so no input is ever <unk>)
//   259..vocab_size-1                         merge results, in merge order
// Pre-tokenizer ByteLevel(add_prefix_space=false, use_regex=true), ByteLevel decoder,
// TemplateProcessing "<s> $A" (Llama's add_bos_token=true, add_eos_token=false).
import fs from 'node:fs';
import tk from '@anush008/tokenizers';

const { Tokenizer, BPE, byteLevelPreTokenizer, byteLevelAlphabet } = tk;
const [trainTxt, outPath, vocabArg] = process.argv.slice(2);
const vocabSize = Number(vocabArg ?? 4096);
const SPECIALS = ['<unk>', '<s>', '</s>'];

// 1. Train (default BpeTrainer) on the training split only.
const trainer = new Tokenizer(BPE.empty());
trainer.setPreTokenizer(byteLevelPreTokenizer(false, true));
trainer.train([trainTxt]);
const tmp = `${outPath}.raw.json`;
trainer.save(tmp, false);
const trained = JSON.parse(fs.readFileSync(tmp, 'utf8'));
fs.unlinkSync(tmp);
const allMerges = trained.model.merges.map((m) => (typeof m === 'string' ? m.split(' ') : m));
console.log(`default BpeTrainer: ${Object.keys(trained.model.vocab).length} tokens, ${allMerges.length} merges`);

// 2. Vocabulary: specials, full byte alphabet (sorted by code point), then the first merges.
const vocab = {};
for (const s of SPECIALS) vocab[s] = Object.keys(vocab).length;
const alphabet = [...byteLevelAlphabet()].sort((a, b) => a.codePointAt(0) - b.codePointAt(0));
if (alphabet.length !== 256) throw new Error(`byte alphabet has ${alphabet.length} symbols`);
for (const c of alphabet) vocab[c] = Object.keys(vocab).length;
const merges = allMerges.slice(0, vocabSize - Object.keys(vocab).length);
for (const [a, b] of merges) {
  if (!(a in vocab) || !(b in vocab)) throw new Error(`merge ${a} ${b} uses an unknown token`);
  if (a + b in vocab) throw new Error(`merge ${a} ${b} gives an existing token`);
  vocab[a + b] = Object.keys(vocab).length;
}
if (Object.keys(vocab).length !== vocabSize) throw new Error('vocab size mismatch');

// 3. Assemble a standard tokenizer.json, load it with the Rust library and save it back in its
//    own canonical form (the binding has no ByteLevel decoder constructor, so build the JSON).
const special = (content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const json = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: SPECIALS.map((s, i) => special(s, i)),
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
  },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
  },
};
const tok = Tokenizer.fromString(JSON.stringify(json));
tok.save(outPath, true);
console.log(`wrote ${outPath}: ${Tokenizer.fromFile(outPath).getVocabSize(true)} tokens, ${merges.length} merges`);
