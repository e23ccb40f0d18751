import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AutoTokenizer, DownloadError, env } from '../../src/index.js';
import { HF_TINY, readJson } from '../helpers/hf-tiny.js';

// A local static server for the fixture folders, to exercise the URL path.
let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer(async (req, res) => {
    try {
      const body = await readFile(join(HF_TINY, decodeURIComponent(req.url!.split('?')[0])));
      res.writeHead(200).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  base = `http://127.0.0.1:${address.port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('AutoTokenizer.from_pretrained', () => {
  const golden = readJson<{ tokenizer_cases: Array<{ text: string; add_special_tokens: boolean; ids: number[] }> }>('qwen3', 'golden.json');
  const sample = golden.tokenizer_cases.find((c) => c.text.length > 3)!;

  it('loads a local folder in Node', async () => {
    const tok = await AutoTokenizer.from_pretrained(join(HF_TINY, 'qwen3'));
    expect(tok.encode(sample.text, { add_special_tokens: sample.add_special_tokens })).toEqual(sample.ids);
  });

  it('loads a folder URL', async () => {
    const tok = await AutoTokenizer.from_pretrained(`${base}/qwen3`);
    expect(tok.encode(sample.text, { add_special_tokens: sample.add_special_tokens })).toEqual(sample.ids);
  });

  it('loads a Hub id through env.remoteHost and the path template', async () => {
    const saved = { ...env };
    env.remoteHost = base;
    env.remotePathTemplate = '{model}/';
    try {
      const tok = await AutoTokenizer.from_pretrained('qwen3');
      expect(tok.eos_token).toBe(readJson<{ eos_token: string }>('qwen3', 'tokenizer_config.json').eos_token);
    } finally {
      Object.assign(env, saved);
    }
  });

  it('names the missing file', async () => {
    const err = await AutoTokenizer.from_pretrained(`${base}/no-such-model`).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/tokenizer\.json/);
    expect(err.message).toMatch(/404/);
  });

  it('refuses the Hub when remote models are off', async () => {
    const saved = env.allowRemoteModels;
    env.allowRemoteModels = false;
    try {
      await expect(AutoTokenizer.from_pretrained('org/model')).rejects.toThrow(/allowRemoteModels/);
    } finally {
      env.allowRemoteModels = saved;
    }
  });
});
