/**
 * The page side of the Worker engine: `RemoteCausalLM`, what `AutoModelForCausalLM.from_pretrained` returns in a
 * browser page with `env.useWorker`. The model, its GPU device and the generation loop live in one shared module
 * Worker (engine.ts); this object is a thin proxy with the API of `CausalLM`:
 *
 * - `generate(options)` returns the same rows. A `streamer` and `token_callback` stay on the page: the worker sends
 *   each step's new ids only (the prompt `put` happens here, once). `signal` aborts the worker's generation (the
 *   call rejects with `AbortError`; the model stays usable).
 * - `stop_strings` are matched here, on the page, where the tokenizer is: the page decodes each step's new ids as
 *   `CausalLM` does, finishes a sequence at the token that completes a stop string (later tokens of a finished
 *   sequence are the pad id, as in the calling thread) and, once every sequence has finished, returns and tells the
 *   worker to stop. The result and what the streamer sees are exactly those of an in-thread call; `stats()` then
 *   still describes the previous call.
 * - `model({ input_ids, attention_mask })` / `forward(inputs)` → `{ logits }` (the Tensor's data is transferred).
 * - `stats()` is synchronous: every load, generate and forward reply carries fresh stats, cached here;
 *   `refreshStats()` asks the worker (e.g. after another model on the device was disposed).
 * - `decodeLedger(batch)` returns a Promise (the ledger is built in the worker).
 * - `dispose()` frees the model's GPU memory in the worker and resolves when done; disposing the last model
 *   terminates the worker, and a later load starts a new one.
 * - Errors arrive as the typed errors they were in the worker (protocol.ts).
 */
import * as Comlink from 'comlink';
import { env } from '../../api/env.js';
import { localModelFiles } from '../../hub/local-files.js';
import { resolveGeneration, type GenerationOptions } from '../../api/generation-config.js';
import type { ModelLoadOptions } from '../../api/load-model.js';
import { ConfigError, DeviceLostError, WebSLMError } from '../../errors.js';
import type { DecoderConfig } from '../../models/config.js';
import { Callable } from '../../tokenizer/callable.js';
import type { PreTrainedTokenizer } from '../../tokenizer/tokenizer.js';
import type { ForwardInputs, ForwardOutput, GenerateOptions, ModelStats } from '../causal-lm.js';
import { readBatch } from '../inputs.js';
import { SequenceStops } from '../sequence-stops.js';
import { Tensor } from '../tensor.js';
import type { Engine } from './engine.js';
import {
  plainIds,
  unwrap,
  type ControlMessage,
  type EnvSnapshot,
  type GenerateReply,
  type LoadReply,
  type Reply,
  type StepMessage,
  type WorkerGenerateRequest,
} from './protocol.js';

interface Connection {
  worker: Worker;
  engine: Comlink.Remote<Engine>;
  /** Loaded models plus loads in progress; the worker is terminated when it drops to 0. */
  users: number;
  /** Rejections of the calls in flight, run if the worker dies. */
  inFlight: Set<(e: Error) => void>;
  dead: Error | null;
}

let connection: Connection | null = null;

/** The engine's Worker while one is running, else null (for tests and diagnostics). */
export function engineWorker(): Worker | null {
  return connection?.worker ?? null;
}

function connect(): Connection {
  if (connection) return connection;
  const worker = new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'webslm-engine' });
  const conn: Connection = { worker, engine: Comlink.wrap<Engine>(worker), users: 0, inFlight: new Set(), dead: null };
  const crash = (what: string) => {
    const error = new WebSLMError(
      `The webslm Worker engine stopped (${what}). Load the model again, or set env.useWorker = false to run models in this thread.`,
    );
    conn.dead = error;
    if (connection === conn) connection = null;
    for (const reject of conn.inFlight) reject(error);
    conn.inFlight.clear();
    worker.terminate();
  };
  worker.addEventListener('error', (e) => {
    e.preventDefault();
    crash(e.message || 'its script failed to load or threw');
  });
  worker.addEventListener('messageerror', () => crash('a message from it could not be read'));
  connection = conn;
  return conn;
}

function release(conn: Connection): void {
  conn.users--;
  if (conn.users > 0) return;
  if (connection === conn) connection = null;
  conn.worker.terminate();
  // Calls still in flight (e.g. a generate of a model disposed under it) end with the model.
  conn.dead = new DeviceLostError('The model was disposed while this call was running; load it again.', 'destroyed');
  for (const reject of conn.inFlight) reject(conn.dead);
  conn.inFlight.clear();
}

/** A promise that also rejects if the worker dies before it settles. */
function guarded<T>(conn: Connection, run: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (conn.dead) return reject(conn.dead);
    conn.inFlight.add(reject);
    run().then(resolve, reject).finally(() => conn.inFlight.delete(reject));
  });
}

/** Runs an engine call and unwraps its reply into the value or the typed error. */
async function call<T>(conn: Connection, run: () => Promise<Reply<T>>): Promise<T> {
  return unwrap(await guarded(conn, run));
}

function envSnapshot(): EnvSnapshot {
  const { remoteHost, remotePathTemplate, allowRemoteModels, localModelPath, useBrowserCache, cacheName, cacheDir } = env;
  return { remoteHost, remotePathTemplate, allowRemoteModels, localModelPath, useBrowserCache, cacheName, cacheDir };
}

/** Forwards `signal`'s abort to the worker on `port`; returns the unsubscribe. */
function forwardAbort(signal: AbortSignal | undefined, port: MessagePort): () => void {
  if (!signal) return () => {};
  const onAbort = () => port.postMessage({ t: 'abort' } satisfies ControlMessage);
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** `from_pretrained` in the Worker engine (auto-model.ts decides when). */
export async function loadRemoteCausalLM(model: string, options: ModelLoadOptions = {}): Promise<RemoteCausalLM> {
  const { signal, progress_callback, cache, context, gpu, ...rest } = options;
  if (context !== undefined || gpu !== undefined) {
    throw new ConfigError(
      'The `context` and `gpu` load options belong to this thread and cannot be passed to the Worker engine: set env.useWorker = false to run the model here.',
    );
  }
  if (cache !== undefined && cache !== null) {
    throw new ConfigError(
      'A `cache` object cannot be passed to the Worker engine (it uses its own default cache): pass cache: null for none, leave it unset, or set env.useWorker = false to run the model in this thread.',
    );
  }
  const conn = connect();
  conn.users++;
  const channel = new MessageChannel();
  const unsubscribe = forwardAbort(signal, channel.port1);
  try {
    const reply = await call(conn, () =>
      conn.engine.load(
        model,
        { ...rest, cache, aborted: signal?.aborted ?? false, localFiles: localModelFiles(model) ?? undefined },
        envSnapshot(),
        Comlink.transfer(channel.port2, [channel.port2]),
        progress_callback ? Comlink.proxy(progress_callback) : undefined,
      ),
    );
    return new RemoteCausalLM(conn, reply);
  } catch (e) {
    release(conn);
    throw e;
  } finally {
    unsubscribe();
    channel.port1.close();
  }
}

function stopStringsOf(value: GenerationOptions['stop_strings']): string[] | null {
  if (value === undefined || value === null) return null;
  return Array.isArray(value) ? value : [value];
}

/** Stop strings matched on the page, over the ids the worker streams, with the rows `CausalLM.generate` starts from. */
class PageStops extends SequenceStops {
  constructor(options: GenerateOptions, base: GenerationOptions | null, config: DecoderConfig, tok: PreTrainedTokenizer) {
    const input = readBatch(options.input_ids, options.attention_mask, config.vocabSize);
    const gen = resolveGeneration([base, options], input.length, {
      eosTokenId: config.eosTokenId,
      padTokenId: config.padTokenId,
      bosTokenId: config.bosTokenId,
    });
    super(
      input.ids.flatMap((row) => Array.from({ length: gen.numReturnSequences }, () => [...row])),
      input.length,
      gen,
      tok,
    );
  }
}

/** `model(inputs)` is `model.forward(inputs)`, as for `CausalLM`. */
export interface RemoteCausalLM {
  (inputs: ForwardInputs): Promise<ForwardOutput>;
}

export class RemoteCausalLM extends Callable<[ForwardInputs], Promise<ForwardOutput>> {
  readonly config!: DecoderConfig;
  readonly generation_config!: GenerationOptions | null;
  readonly maxContext!: number;
  private conn!: Connection;
  private handle!: number;
  private lastStats!: ModelStats;
  private disposing: Promise<void> | null = null;

  /** Made by `AutoModelForCausalLM.from_pretrained`. */
  constructor(conn: Connection, loaded: LoadReply) {
    super();
    this.conn = conn;
    this.handle = loaded.handle;
    this.lastStats = loaded.stats;
    this.disposing = null;
    (this as { config: DecoderConfig }).config = loaded.config;
    (this as { generation_config: GenerationOptions | null }).generation_config = loaded.generation_config;
    (this as { maxContext: number }).maxContext = loaded.maxContext;
  }

  protected _call(inputs: ForwardInputs): Promise<ForwardOutput> {
    return this.forward(inputs);
  }

  /** Logits for every position, (batch, sequence, vocab) f32. */
  async forward(inputs: ForwardInputs): Promise<ForwardOutput> {
    const conn = this.usable();
    const reply = await call(conn, () =>
      conn.engine.forward(this.handle, {
        input_ids: plainIds(inputs.input_ids),
        attention_mask: plainIds(inputs.attention_mask),
        position_ids: plainIds(inputs.position_ids),
      }),
    );
    this.lastStats = reply.stats;
    return { logits: new Tensor('float32', reply.data, reply.dims) };
  }

  /** Generates continuations; returns each sequence's ids (prompt, padding included, then new tokens). */
  async generate(options: GenerateOptions): Promise<number[][]> {
    const conn = this.usable();
    const { streamer, signal, tokenizer, token_callback, input_ids, attention_mask, ...generation } = options;
    const base = options.generation_config ?? this.generation_config;
    const stopStrings = stopStringsOf(options.stop_strings) ?? stopStringsOf(base?.stop_strings) ?? [];
    // Without a tokenizer the worker refuses stop strings with the same error as in this thread.
    const stopsHere = stopStrings.length > 0 && tokenizer !== undefined;
    const request: WorkerGenerateRequest = {
      options: {
        ...generation,
        input_ids: plainIds(input_ids),
        attention_mask: plainIds(attention_mask),
        ...(stopsHere ? { stop_strings: [] } : {}),
      },
      steps: Boolean(streamer || token_callback || stopsHere),
      streamer: Boolean(streamer),
      aborted: signal?.aborted ?? false,
    };

    const channel = new MessageChannel();
    const port = channel.port1;
    const unsubscribe = forwardAbort(signal, port);
    let stops: PageStops | null = null;
    const pageStops = () => (stops ??= new PageStops(options, base, this.config, tokenizer!));
    let finishedHere: { rows: number[][] } | { error: unknown } | null = null;
    const stopWorker = () => port.postMessage({ t: 'stop' } satisfies ControlMessage);
    let portDone!: () => void;
    const done = new Promise<void>((resolve) => (portDone = resolve));

    const onMessage = (m: StepMessage) => {
      if (m.t === 'done') return portDone();
      if (finishedHere) return;
      try {
        if (m.t === 'prompt') {
          const rows = stopsHere ? pageStops().rows : readBatch(input_ids, attention_mask, this.config.vocabSize).ids;
          streamer?.put(rows.map((r) => [...r]));
        } else if (m.t === 'step') {
          const next = stopsHere ? pageStops().step(m.ids) : m.ids;
          token_callback?.(next);
          streamer?.put([[next[0]!]]);
          if (stopsHere && pageStops().check(next)) {
            finishedHere = { rows: pageStops().rows };
            stopWorker();
            streamer?.end();
            portDone();
          }
        } else if (m.t === 'end') {
          streamer?.end();
        }
      } catch (error) {
        // A callback of the caller threw: the call fails with its error, as in this thread.
        finishedHere = { error };
        stopWorker();
        portDone();
      }
    };
    port.onmessage = (e: MessageEvent<StepMessage>) => onMessage(e.data);

    try {
      const reply: Promise<Reply<GenerateReply>> = guarded(conn, () =>
        // (comlink's types spread a union return into a union of promises)
        conn.engine.generate(this.handle, request, Comlink.transfer(channel.port2, [channel.port2])) as Promise<Reply<GenerateReply>>,
      );
      // The steps posted before the reply are handled before the call settles (`done` comes after them).
      const [result] = await Promise.allSettled([reply, guarded(conn, () => done)]);
      const here = finishedHere as { rows: number[][] } | { error: unknown } | null;
      if (here && 'error' in here) throw here.error;
      if (here) return here.rows;
      if (result.status === 'rejected') throw result.reason;
      const value = unwrap(result.value);
      this.lastStats = value.stats;
      return value.rows;
    } catch (e) {
      const here = finishedHere as { rows: number[][] } | { error: unknown } | null;
      if (here && 'rows' in here) return here.rows;
      throw e;
    } finally {
      unsubscribe();
      port.close();
    }
  }

  /** The stats of the last load, forward or generate reply (see `refreshStats`). */
  stats(): ModelStats {
    return structuredClone(this.lastStats);
  }

  /** Fresh stats from the worker (device memory changes when other models on it are loaded or disposed). */
  async refreshStats(): Promise<ModelStats> {
    const conn = this.usable();
    this.lastStats = await call(conn, () => conn.engine.stats(this.handle));
    return this.stats();
  }

  /** The dispatches of one decode step for `batch` sequences, one line each (kernel, label, grid). */
  async decodeLedger(batch = 1): Promise<string[]> {
    const conn = this.usable();
    return call(conn, () => conn.engine.decodeLedger(this.handle, batch));
  }

  /** Frees the model's GPU memory in the worker; the last model's dispose terminates the worker. */
  dispose(): Promise<void> {
    if (!this.disposing) {
      const conn = this.conn;
      this.disposing = (conn.dead ? Promise.resolve() : guarded(conn, () => conn.engine.dispose(this.handle)))
        .catch(() => undefined)
        .finally(() => release(conn));
    }
    return this.disposing;
  }

  /** For tests: destroys the worker's GPU device this model runs on, as a driver reset would lose it. */
  async loseDeviceForTesting(): Promise<void> {
    const conn = this.usable();
    await guarded(conn, () => conn.engine.loseDevice(this.handle));
  }

  private usable(): Connection {
    if (this.disposing) throw new DeviceLostError('This model has been disposed; load it again.', 'destroyed');
    if (this.conn.dead) throw this.conn.dead;
    return this.conn;
  }
}
