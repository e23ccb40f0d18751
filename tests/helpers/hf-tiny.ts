// The hf-tiny fixtures: tiny Hugging Face model folders with goldens from Python transformers. Node only.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HF_TINY = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf-tiny');

export const HF_TINY_CASES: string[] = readdirSync(HF_TINY, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

export function readJson<T = Record<string, unknown>>(caseName: string, file: string): T {
  return JSON.parse(readFileSync(join(HF_TINY, caseName, file), 'utf8')) as T;
}

export function readText(caseName: string, file: string): string {
  return readFileSync(join(HF_TINY, caseName, file), 'utf8');
}
