// Encodes prompts with the model folder's tokenizer through @huggingface/transformers (the same tokenizer
// code transformers.js generation uses), so export.py needs no Python tokenizer.
//
//   node tokenize.mjs <model dir> <prompt> [<prompt> ...]    -> JSON [[ids...], ...] on stdout
import path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';

const [modelDir, ...prompts] = process.argv.slice(2);
const abs = path.resolve(modelDir);
env.allowRemoteModels = false;
env.localModelPath = path.dirname(abs) + '/';
const tok = await AutoTokenizer.from_pretrained(path.basename(abs));
const out = prompts.map((p) => Array.from(tok.encode(p)));
process.stdout.write(JSON.stringify(out) + '\n');
