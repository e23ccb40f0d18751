/**
 * A causal language model on the GPU: the model-independent machinery around a family's forward pass.
 *
 * - Workspace: token ids, positions, padding lengths, the last hidden row of each sequence, logits, the
 *   repetition-penalty history and two 4-byte-per-row readback buffers, sized for a batch capacity and reused.
 * - Plans: a family's prepared dispatches for one (batch, tokens) shape, built on first use and cached, so a
 *   decode step records prepared dispatches and creates no GPU object.
 * - Prefill runs the prompt in chunks of `prefillChunk` tokens per sequence (bounded activation memory), one
 *   submit per chunk; the last chunk ends with the final norm, LM head and sampler on each sequence's last row.
 * - Decode: one command buffer and one submit per step: body → head → sampler (writes the next ids, which the
 *   next step's embedding reads in place) → bookkeeping (history, positions) → copy of the ids to a mapped buffer.
 *   The next step is submitted before the previous ids are read, so the GPU never waits for the CPU.
 */
import { AbortError, ConfigError, DeviceLostError } from '../errors.js';
import type { BaseStreamer } from '../api/streamers.js';
import { resolveGeneration, type GenerationOptions, type ResolvedGeneration } from '../api/generation-config.js';
import { prepareDecodeStep } from '../kernels/decode-step.js';
import { disposeDispatch, ledger, recordDispatches, type KernelDispatch } from '../kernels/dispatch.js';
import { MAX_SUPPRESS_IDS, prepareSampling, type SamplingDispatch } from '../kernels/sampling.js';
import type { DecoderConfig } from '../models/config.js';
import type { BodyPlan, FamilyInstance, HeadPlan, ModelFamily } from '../models/family.js';
import { Callable } from '../tokenizer/callable.js';
import { SequenceStops } from './sequence-stops.js';
import type { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';
import { COPY_DST, COPY_SRC, MAP_READ, STORAGE, createBuffer, writeBuffer } from './buffers.js';
import type { GPUContext } from './gpu-context.js';
import { positionIds, readBatch, type IdsInput } from './inputs.js';
import { Tensor } from './tensor.js';
import type { WeightBytesByRole, WeightStore } from './weights.js';

const F32 = 4;

export interface ForwardInputs {
  input_ids: IdsInput;
  attention_mask?: IdsInput;
  /** Default: cumsum(attention_mask) − 1, with 1 at padding (what generate() uses). */
  position_ids?: IdsInput;
}

export interface ForwardOutput {
  /** (batch, sequence, vocab) f32. */
  logits: Tensor<'float32'>;
}

export interface GenerateOptions extends GenerationOptions {
  input_ids: IdsInput;
  attention_mask?: IdsInput;
  /** Receives the prompt ids, then each step's new ids (batch size 1). */
  streamer?: BaseStreamer;
  /** Stops generation with an AbortError; the model stays usable. */
  signal?: AbortSignal;
  /** Needed for `stop_strings` (as in transformers). */
  tokenizer?: PreTrainedTokenizer;
  /** Called after each step with the new id of every sequence (before stop checks). */
  token_callback?: (ids: readonly number[]) => void;
  /** A generation_config to use instead of the model's (as `generation_config=` in transformers). */
  generation_config?: GenerationOptions;
}

export interface StepStats {
  submits: number;
  dispatches: number;
  bytesReadBack: number;
}

export interface ModelStats {
  /** GPU bytes this model holds: weights + workspace + prepared plans. */
  gpuMemoryBytes: number;
  weightBytes: number;
  /** `weightBytes` split by role: Linear matrices, LM head (0 when tied to the embedding), embedding table, vectors. */
  weightBytesByRole: WeightBytesByRole;
  /** GPU bytes held on the whole device (every model and buffer made through webslm on it). */
  deviceMemoryBytes: number;
  /** The last generate() call. */
  prefill: { tokens: number; ms: number; tokensPerSecond: number };
  decode: { steps: number; tokens: number; ms: number; tokensPerSecond: number };
  /** Per decode step of the last generate() call (the same for every step). */
  decodeStep: StepStats;
  /** Bytes of weights a decode step reads (every matrix once), for GB/s. */
  weightBytesPerStep: number;
}

interface Workspace {
  batch: number;
  rows: number;
  maxSeq: number;
  ids: GPUBuffer;
  positions: GPUBuffer;
  rowMaskStart: GPUBuffer;
  decodeIds: GPUBuffer;
  decodePositions: GPUBuffer;
  last: GPUBuffer;
  logits: GPUBuffer;
  historyIds: GPUBuffer;
  historyCounts: GPUBuffer;
  readback: [GPUBuffer, GPUBuffer];
  buffers: GPUBuffer[];
}

/** What a decode step records for `batch` sequences, built once per batch size. */
interface Tail {
  batch: number;
  sampler: SamplingDispatch;
  bookkeeping: KernelDispatch;
  prefillHead: HeadPlan;
  decodeHead: HeadPlan;
  decodeBody: BodyPlan;
}

export interface CausalLMParts {
  ctx: GPUContext;
  ownsContext: boolean;
  family: ModelFamily;
  config: DecoderConfig;
  weights: WeightStore;
  instance: FamilyInstance;
  generationConfig: GenerationOptions | null;
  maxContext: number;
  prefillChunk: number;
}

/** `model(inputs)` is `model.forward(inputs)`, as in transformers.js. */
export interface CausalLM {
  (inputs: ForwardInputs): Promise<ForwardOutput>;
}

export class CausalLM extends Callable<[ForwardInputs], Promise<ForwardOutput>> {
  readonly config!: DecoderConfig;
  readonly generation_config!: GenerationOptions | null;
  readonly maxContext!: number;
  readonly ctx!: GPUContext;
  private parts!: CausalLMParts;
  private ws: Workspace | null = null;
  private bodies!: Map<string, BodyPlan>;
  private tail: Tail | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private lastStats!: Omit<ModelStats, 'gpuMemoryBytes' | 'deviceMemoryBytes' | 'weightBytes' | 'weightBytesByRole' | 'weightBytesPerStep'>;

  constructor(parts: CausalLMParts) {
    super();
    this.parts = parts;
    (this as { config: DecoderConfig }).config = parts.config;
    (this as { generation_config: GenerationOptions | null }).generation_config = parts.generationConfig;
    (this as { maxContext: number }).maxContext = parts.maxContext;
    (this as { ctx: GPUContext }).ctx = parts.ctx;
    this.ws = null;
    this.bodies = new Map();
    this.tail = null;
    this.queue = Promise.resolve();
    this.disposed = false;
    this.lastStats = {
      prefill: { tokens: 0, ms: 0, tokensPerSecond: 0 },
      decode: { steps: 0, tokens: 0, ms: 0, tokensPerSecond: 0 },
      decodeStep: { submits: 0, dispatches: 0, bytesReadBack: 0 },
    };
  }

  /** `await model({ input_ids, attention_mask })` → `{ logits }` for every position. */
  protected _call(inputs: ForwardInputs): Promise<ForwardOutput> {
    return this.forward(inputs);
  }

  /** Logits for every position, (batch, sequence, vocab) f32. Runs from an empty cache. */
  forward(inputs: ForwardInputs): Promise<ForwardOutput> {
    return this.exclusive(() => this.runForward(inputs));
  }

  /** Generates continuations; returns each sequence's ids (prompt, padding included, then new tokens). */
  generate(options: GenerateOptions): Promise<number[][]> {
    return this.exclusive(() => this.runGenerate(options));
  }

  stats(): ModelStats {
    const ws = this.ws;
    let plans = 0;
    const tail = this.tail;
    const planned = [...this.bodies.values(), ...(tail ? [tail.decodeBody, tail.prefillHead, tail.decodeHead] : [])];
    const owned = [...planned.flatMap((p) => p.dispatches), ...(tail ? [tail.sampler, tail.bookkeeping] : [])];
    for (const d of owned) for (const b of d.owned) plans += b.size;
    if (tail) plans += 2 * tail.prefillHead.rows * this.parts.config.hiddenSize * F32; // the heads' final-norm rows
    const wsBytes = ws ? ws.buffers.reduce((n, b) => n + b.size, 0) : 0;
    const scratch = ws ? this.parts.instance.workspaceBytes(ws.batch, ws.rows, ws.maxSeq) : 0;
    return {
      ...structuredClone(this.lastStats),
      gpuMemoryBytes: this.parts.weights.bytes + wsBytes + scratch + plans,
      weightBytes: this.parts.weights.bytes,
      weightBytesByRole: this.parts.weights.bytesByRole(),
      deviceMemoryBytes: this.parts.ctx.memory.bytes,
      weightBytesPerStep: this.weightBytesPerStep(),
    };
  }

  /** The dispatches of one decode step for `batch` sequences, one line each (kernel, label, grid). */
  decodeLedger(batch = 1): string[] {
    this.assertUsable();
    this.ensureWorkspace(batch);
    const tail = this.ensureTail(batch);
    return ledger([...tail.decodeBody.dispatches, ...tail.decodeHead.dispatches, tail.sampler, tail.bookkeeping]);
  }

  /** Frees every GPU buffer of the model (and its device, when the model created it). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseWorkspace();
    this.parts.instance.dispose();
    this.parts.weights.dispose();
    if (this.parts.ownsContext) this.parts.ctx.dispose();
  }

  // ——— internals ———

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private assertUsable(): void {
    if (this.disposed) throw new DeviceLostError('This model has been disposed; load it again.', 'destroyed');
    this.parts.ctx.assertAlive();
  }

  private weightBytesPerStep(): number {
    let n = 0;
    for (const slot of this.parts.weights.slots.values()) {
      if (slot.spec.kind !== 'matrix') continue;
      // The embedding table is gathered (a row per token), not streamed, unless it is also the tied LM head.
      if (slot.spec.key === 'embed' && !this.parts.config.tieWordEmbeddings) continue;
      for (const c of slot.chunks) n += c.buffer.size + (c.scales?.size ?? 0) + (c.zeros?.size ?? 0);
    }
    return n;
  }

  private disposeTail(): void {
    const tail = this.tail;
    if (!tail) return;
    this.tail = null;
    disposeDispatch(tail.sampler);
    disposeDispatch(tail.bookkeeping);
    tail.prefillHead.dispose();
    tail.decodeHead.dispose();
    tail.decodeBody.dispose();
  }

  private releaseWorkspace(): void {
    for (const p of this.bodies.values()) p.dispose();
    this.bodies.clear();
    this.disposeTail();
    if (this.ws) for (const b of this.ws.buffers) b.destroy();
    this.ws = null;
    this.parts.instance.release();
  }

  /** Buffers for `batch` sequences (kept when a larger batch already fits). */
  private ensureWorkspace(batch: number): Workspace {
    if (this.ws && this.ws.batch >= batch) return this.ws;
    this.releaseWorkspace();
    const { ctx, config, maxContext, prefillChunk } = this.parts;
    const rows = batch * prefillChunk;
    const maxSeq = maxContext;
    this.parts.instance.allocate(batch, rows, maxSeq);
    const made: GPUBuffer[] = [];
    const buf = (label: string, bytes: number, usage = STORAGE | COPY_DST | COPY_SRC) => {
      const b = createBuffer(ctx, label, bytes, usage);
      made.push(b);
      return b;
    };
    try {
      this.ws = {
        batch,
        rows,
        maxSeq,
        ids: buf('input_ids', rows * 4),
        positions: buf('position_ids', rows * 4),
        rowMaskStart: buf('padding', batch * 4),
        decodeIds: buf('next_ids', batch * 4),
        decodePositions: buf('next_positions', batch * 4),
        last: buf('last_hidden', batch * config.hiddenSize * F32),
        logits: buf('next_logits', batch * config.vocabSize * F32),
        historyIds: buf('history.ids', batch * maxSeq * 4),
        historyCounts: buf('history.counts', batch * 4),
        readback: [buf('readback.0', batch * 4, MAP_READ | COPY_DST), buf('readback.1', batch * 4, MAP_READ | COPY_DST)],
        buffers: made,
      };
    } catch (e) {
      for (const b of made) b.destroy();
      this.parts.instance.release();
      throw e;
    }
    return this.ws;
  }

  /** The prefill body for a (batch, chunk) shape, over the uploaded ids and positions (decode's is in the tail). */
  private prefillBody(batch: number, tokens: number): BodyPlan {
    const key = `${batch}:${tokens}`;
    let plan = this.bodies.get(key);
    if (!plan) {
      const ws = this.ws!;
      const inputs = { ids: ws.ids, positions: ws.positions, rowMaskStart: ws.rowMaskStart };
      // Keep a few shapes (full chunk, a remainder, single tokens); drop the oldest beyond that.
      if (this.bodies.size >= 6) {
        const [oldKey, old] = this.bodies.entries().next().value as [string, BodyPlan];
        old.dispose();
        this.bodies.delete(oldKey);
      }
      plan = this.parts.instance.body(inputs, batch, tokens);
      this.bodies.set(key, plan);
    }
    return plan;
  }

  private ensureTail(batch: number): Tail {
    if (this.tail?.batch === batch) return this.tail;
    this.disposeTail();
    const ws = this.ws!;
    const { ctx, instance, config } = this.parts;
    const history = { ids: ws.historyIds, counts: ws.historyCounts, stride: ws.maxSeq };
    const sampler = prepareSampling(ctx, { logits: ws.logits, tokens: ws.decodeIds, rows: batch, vocab: config.vocabSize, history, label: 'sampler' });
    const bookkeeping = prepareDecodeStep(ctx, { tokens: ws.decodeIds, history, positions: ws.decodePositions, rows: batch, label: 'append next ids' });
    const decodeBody = instance.body({ ids: ws.decodeIds, positions: ws.decodePositions, rowMaskStart: ws.rowMaskStart }, batch, 1);
    const prefillHead = instance.head(ws.last, ws.logits, batch);
    const decodeHead = instance.head(decodeBody.output, ws.logits, batch);
    this.tail = { batch, sampler, bookkeeping, prefillHead, decodeHead, decodeBody };
    return this.tail;
  }

  /** Writes tokens start..start+tokens−1 of every row (ids and position ids), packed (row, token). */
  private uploadChunk(rows: number[][], positions: number[][], start: number, tokens: number): void {
    const ws = this.ws!;
    const ids = new Uint32Array(rows.length * tokens);
    const pos = new Uint32Array(rows.length * tokens);
    rows.forEach((row, b) => {
      for (let t = 0; t < tokens; t++) {
        ids[b * tokens + t] = row[start + t]!;
        pos[b * tokens + t] = positions[b]![start + t]!;
      }
    });
    writeBuffer(this.parts.ctx, ws.ids, ids);
    writeBuffer(this.parts.ctx, ws.positions, pos);
  }

  private async runForward(inputs: ForwardInputs): Promise<ForwardOutput> {
    this.assertUsable();
    const { ctx, config, prefillChunk } = this.parts;
    const batch = readBatch(inputs.input_ids, inputs.attention_mask, config.vocabSize);
    const B = batch.ids.length;
    const S = batch.length;
    if (S > this.maxContext) {
      throw new ConfigError(`The input has ${S} tokens per sequence, more than max_context (${this.maxContext}); load the model with a larger max_context.`);
    }
    let positions = positionIds(batch);
    if (inputs.position_ids !== undefined) {
      const given = readBatch(inputs.position_ids, undefined, 0x7fffffff).ids;
      if (given.length !== B || given[0]!.length !== S) throw new ConfigError(`position_ids must have the shape of input_ids ([${B}, ${S}]).`);
      positions = given;
    }
    const ws = this.ensureWorkspace(B);
    writeBuffer(ctx, ws.rowMaskStart, new Uint32Array(batch.leftPad));
    const V = config.vocabSize;
    const out = new Float32Array(B * S * V);
    const chunkMax = Math.min(prefillChunk, S);
    const logitsBuf = createBuffer(ctx, 'logits', B * chunkMax * V * F32, STORAGE | COPY_SRC);
    const staging = createBuffer(ctx, 'logits/readback', B * chunkMax * V * F32, MAP_READ | COPY_DST);
    const heads: HeadPlan[] = [];
    try {
      for (let start = 0; start < S; start += prefillChunk) {
        const T = Math.min(prefillChunk, S - start);
        const body = this.prefillBody(B, T);
        const head = this.parts.instance.head(body.output, logitsBuf, B * T);
        heads.push(head);
        this.uploadChunk(batch.ids, positions, start, T);
        body.setStep(start, T);
        const encoder = ctx.device.createCommandEncoder({ label: 'forward' });
        recordDispatches(encoder, [...body.dispatches, ...head.dispatches], 'forward');
        encoder.copyBufferToBuffer(logitsBuf, 0, staging, 0, B * T * V * F32);
        ctx.device.queue.submit([encoder.finish()]);
        await staging.mapAsync(MAP_READ, 0, B * T * V * F32);
        const chunk = new Float32Array(staging.getMappedRange(0, B * T * V * F32));
        for (let b = 0; b < B; b++) out.set(chunk.subarray(b * T * V, (b + 1) * T * V), (b * S + start) * V);
        staging.unmap();
      }
    } finally {
      for (const h of heads) h.dispose();
      logitsBuf.destroy();
      staging.destroy();
    }
    return { logits: new Tensor('float32', out, [B, S, V]) };
  }

  private async runGenerate(options: GenerateOptions): Promise<number[][]> {
    this.assertUsable();
    const { ctx, config, prefillChunk } = this.parts;
    if (options.signal?.aborted) throw new AbortError('Generation was aborted before it started.');
    const input = readBatch(options.input_ids, options.attention_mask, config.vocabSize);
    if (input.rightPad.some((n) => n > 0)) {
      throw new ConfigError('generate() needs left padding: a row of attention_mask ends in zeros. Tokenize with padding_side "left".');
    }
    const L = input.length;
    const gen: ResolvedGeneration = resolveGeneration(
      [options.generation_config ?? this.generation_config, options],
      L,
      { eosTokenId: config.eosTokenId, padTokenId: config.padTokenId, bosTokenId: config.bosTokenId },
    );
    if (gen.minNewTokens > 0 && gen.eosTokenIds.length > MAX_SUPPRESS_IDS) {
      throw new ConfigError(
        `min_new_tokens / min_length with ${gen.eosTokenIds.length} EOS ids: at most ${MAX_SUPPRESS_IDS} can be suppressed.`,
      );
    }
    // num_return_sequences: each prompt repeated (repeat_interleave), every copy sampled independently.
    const inputPositions = positionIds(input);
    const rows: number[][] = [];
    const leftPad: number[] = [];
    const positions: number[][] = [];
    input.ids.forEach((row, b) => {
      for (let r = 0; r < gen.numReturnSequences; r++) {
        rows.push([...row]);
        leftPad.push(input.leftPad[b]!);
        positions.push(inputPositions[b]!);
      }
    });
    const B = rows.length;
    const maxNew = gen.maxNewTokens;
    if (L + maxNew > this.maxContext) {
      throw new ConfigError(
        `The prompt (${L} tokens) plus max_new_tokens (${maxNew}) needs ${L + maxNew} positions, more than max_context (${this.maxContext}). ` +
          'Ask for fewer new tokens, or load the model with a larger max_context.',
      );
    }
    const streamer = options.streamer;
    if (streamer && B > 1) throw new ConfigError('A streamer only supports batch size 1 (one prompt, num_return_sequences 1).');
    if (gen.stopStrings.length > 0 && !options.tokenizer) {
      throw new ConfigError('stop_strings needs the tokenizer: pass `tokenizer` to generate().');
    }
    streamer?.put(rows.map((r) => [...r]));
    if (maxNew === 0) {
      streamer?.end();
      return rows;
    }

    const ws = this.ensureWorkspace(B);
    const tail = this.ensureTail(B);

    // Per-sequence state on the GPU: padding, repetition history (the padded prompt, as transformers penalises
    // every id of input_ids), and the position before the first new token (bookkeeping adds one).
    const history = new Uint32Array(B * ws.maxSeq);
    rows.forEach((row, b) => history.set(row, b * ws.maxSeq));
    writeBuffer(ctx, ws.historyIds, history);
    writeBuffer(ctx, ws.historyCounts, new Uint32Array(B).fill(L));
    writeBuffer(ctx, ws.rowMaskStart, new Uint32Array(leftPad));
    writeBuffer(ctx, ws.decodePositions, new Uint32Array(leftPad.map((p) => L - 1 - p)));
    tail.sampler.update({
      greedy: gen.greedy,
      temperature: gen.temperature,
      topK: gen.topK,
      topP: gen.topP,
      minP: gen.minP,
      repetitionPenalty: gen.repetitionPenalty,
      seed: gen.seed >>> 0,
      step: 0,
      // min_new_tokens / min_length: EOS cannot be drawn for the first minNewTokens new tokens (step = new token index).
      suppressIds: gen.minNewTokens > 0 ? gen.eosTokenIds : [],
      suppressSteps: gen.minNewTokens,
    });

    const t0 = now();
    let submitsThisStep = 0;
    const submit = (encoder: GPUCommandEncoder) => {
      ctx.device.queue.submit([encoder.finish()]);
      submitsThisStep++;
    };
    // Prefill: chunks of the prompt; the last one also samples the first new token.
    for (let start = 0; start < L; start += prefillChunk) {
      const T = Math.min(prefillChunk, L - start);
      const body = this.prefillBody(B, T);
      this.uploadChunk(rows, positions, start, T);
      body.setStep(start, T);
      const encoder = ctx.device.createCommandEncoder({ label: 'prefill' });
      recordDispatches(encoder, body.dispatches, 'prefill');
      if (start + T === L) {
        const rowBytes = config.hiddenSize * F32;
        for (let b = 0; b < B; b++) encoder.copyBufferToBuffer(body.output, (b * T + T - 1) * rowBytes, ws.last, b * rowBytes, rowBytes);
        recordDispatches(encoder, [...tail.prefillHead.dispatches, tail.sampler, tail.bookkeeping], 'sample');
        encoder.copyBufferToBuffer(ws.decodeIds, 0, ws.readback[0], 0, B * 4);
      }
      submit(encoder);
    }
    let prefillMs = 0;

    const decodeDispatches = [...tail.decodeBody.dispatches, ...tail.decodeHead.dispatches, tail.sampler, tail.bookkeeping];
    const submitDecode = (step: number) => {
      // Step `step` reads the id sampled at step − 1 (at cache position L + step − 1) and samples the next.
      tail.decodeBody.setStep(L + step - 1, 1);
      tail.sampler.setStep(step);
      const encoder = ctx.device.createCommandEncoder({ label: `decode ${step}` });
      recordDispatches(encoder, decodeDispatches, 'decode');
      encoder.copyBufferToBuffer(ws.decodeIds, 0, ws.readback[step % 2]!, 0, B * 4);
      submit(encoder);
    };
    const got = new Uint32Array(B); // each step's ids, read before the next step is mapped
    const read = async (step: number): Promise<Uint32Array> => {
      const buffer = ws.readback[step % 2]!;
      await buffer.mapAsync(MAP_READ, 0, B * 4);
      got.set(new Uint32Array(buffer.getMappedRange(0, B * 4)));
      buffer.unmap();
      return got;
    };

    const stops = new SequenceStops(rows, L, gen, options.tokenizer);
    let steps = 0;
    let decodeStart = 0;
    let decodeSubmits = 0;
    let decodeSubmitted = 0;
    try {
      for (let step = 0; step < maxNew; step++) {
        if (step + 1 < maxNew) {
          submitsThisStep = 0;
          submitDecode(step + 1);
          decodeSubmits += submitsThisStep;
          decodeSubmitted++;
        }
        const ids = await read(step);
        if (step === 0) {
          prefillMs = now() - t0;
          decodeStart = now();
        }
        steps++;
        const next = stops.step(ids);
        options.token_callback?.(next);
        streamer?.put([[next[0]!]]);
        if (stops.check(next)) break;
        if (options.signal?.aborted) {
          if (step + 1 < maxNew) await read(step + 1); // let the step in flight finish; its buffer is unmapped again
          throw new AbortError(`Generation was aborted after ${steps} new token${steps === 1 ? '' : 's'}.`);
        }
      }
    } finally {
      streamer?.end();
    }
    const decodeMs = steps > 1 ? now() - decodeStart : 0;
    this.lastStats = {
      prefill: { tokens: B * L, ms: prefillMs, tokensPerSecond: prefillMs > 0 ? (B * L) / (prefillMs / 1000) : 0 },
      decode: {
        steps: steps - 1,
        tokens: B * (steps - 1),
        ms: decodeMs,
        tokensPerSecond: decodeMs > 0 ? (B * (steps - 1)) / (decodeMs / 1000) : 0,
      },
      decodeStep: {
        submits: decodeSubmitted > 0 ? decodeSubmits / decodeSubmitted : 0,
        dispatches: decodeDispatches.length,
        bytesReadBack: B * 4,
      },
    };
    return rows;
  }
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
