/**
 * What a model family gives the runtime: the weights it needs (slots filled from the checkpoint) and, for a batch
 * shape, the dispatches of one forward step. The runtime (src/runtime/causal-lm.ts) owns the token ids, positions,
 * padding, sampling and the generation loop; a family owns its weights, scratch buffers and KV cache.
 */
import type { KernelDispatch } from '../kernels/dispatch.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import type { WeightSlotSpec, WeightStore } from '../runtime/weights.js';
import type { DecoderConfig } from './config.js';

/** Buffers the runtime owns and a body plan reads. */
export interface StepInputs {
  /** (batch · tokens) u32 token ids, row-major by (sequence, token). */
  ids: GPUBuffer;
  /** (batch · tokens) u32 position ids, same order. */
  positions: GPUBuffer;
  /** (capacity batch) u32: the first visible cache position of each sequence (its left-padding length). */
  rowMaskStart: GPUBuffer;
}

/** The decoder body for one (batch, tokens) shape: embeddings through the last layer, writing the KV cache. */
export interface BodyPlan {
  readonly batch: number;
  readonly tokens: number;
  readonly dispatches: readonly KernelDispatch[];
  /** (batch · tokens, hidden) f32: the residual stream after the last layer (before the final norm). */
  readonly output: GPUBuffer;
  /** Aims later submissions at cache positions base..base+tokens−1 (tokens ≤ the plan's tokens). */
  setStep(base: number, tokens: number): void;
  dispose(): void;
}

/** Final norm and LM head over `rows` rows of hidden states. */
export interface HeadPlan {
  readonly rows: number;
  readonly dispatches: readonly KernelDispatch[];
  dispose(): void;
}

export interface FamilyInstance {
  /** Scratch for `rowsCapacity` = batch · tokens rows and a KV cache of `batch` × `maxSeq` positions. */
  allocate(batch: number, rowsCapacity: number, maxSeq: number): void;
  /** Bytes `allocate` would take (KV cache + scratch), for the memory estimate. */
  workspaceBytes(batch: number, rowsCapacity: number, maxSeq: number): number;
  body(inputs: StepInputs, batch: number, tokens: number): BodyPlan;
  /** Final norm of `input` (rows, hidden) and the LM head into `logits` (rows, vocab). */
  head(input: GPUBuffer, logits: GPUBuffer, rows: number): HeadPlan;
  /** Frees scratch and KV cache (not the weights). */
  release(): void;
  /** Frees everything the instance made (scratch, KV cache, rope tables); the weights belong to the caller. */
  dispose(): void;
}

export interface ModelFamily {
  readonly name: string;
  readonly modelTypes: readonly string[];
  /** Weight slots for this config (the checkpoint must hold exactly these tensors, but for `ignoreTensor`). */
  weights(config: DecoderConfig): WeightSlotSpec[];
  /** Bytes an instance's `allocate(batch, rowsCapacity, maxSeq)` takes, known from the config alone (the estimate). */
  workspaceBytes(config: DecoderConfig, batch: number, rowsCapacity: number, maxSeq: number): number;
  /** Checkpoint tensors that are present in some exports but unused (e.g. `rotary_emb.inv_freq`). */
  ignoreTensor(name: string, config: DecoderConfig): boolean;
  instantiate(ctx: GPUContext, config: DecoderConfig, weights: WeightStore): FamilyInstance;
}
