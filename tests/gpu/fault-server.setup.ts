// Starts the fault server over a copy of the hf-tiny fixtures, the pre-quantized ones and the embedded models for the GPU tests, and hands its URL to
// them as `inject('faultServer')`. Runs in Node, once per run of the project.
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startFaultServer } from '../helpers/fault-server.js';
import { HF_TINY } from '../helpers/hf-tiny.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `http://127.0.0.1:PORT`: the fault server, with CORS and the /__control/ endpoints. */
    faultServer: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = mkdtempSync(join(tmpdir(), 'webslm-browser-models-'));
  cpSync(HF_TINY, root, { recursive: true });
  // The embedded models of models/ sit beside the fixtures (e.g. `${url}/kjv-llama-tiny`).
  const models = join(HF_TINY, '..', '..', '..', 'models');
  if (existsSync(models)) {
    for (const name of readdirSync(models)) cpSync(join(models, name), join(root, name), { recursive: true });
  }
  // Pre-quantized AWQ / GPTQ checkpoints of the embedded model (`${url}/prequantized/awq-g64`, …).
  const prequantized = join(HF_TINY, '..', 'prequantized');
  if (existsSync(prequantized)) cpSync(prequantized, join(root, 'prequantized'), { recursive: true });
  const server = await startFaultServer(root, { cors: true, control: true });
  project.provide('faultServer', server.url);
  return async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  };
}
