// A module Worker that runs the matmul kernel on its own GPU device, as the engine will.
import * as Comlink from 'comlink';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { runMatmul } from '../helpers/run-matmul.js';

let ctx: GPUContext | undefined;

const api = {
  async adapterName(): Promise<string> {
    ctx ??= await GPUContext.create();
    return ctx.adapter.name;
  },
  async matmul(x: Float32Array, w: Float32Array, M: number, N: number, K: number): Promise<Float32Array> {
    ctx ??= await GPUContext.create();
    const y = await runMatmul(ctx, x, w, M, N, K);
    return Comlink.transfer(y, [y.buffer]);
  },
};
export type MatmulWorkerApi = typeof api;
Comlink.expose(api);
