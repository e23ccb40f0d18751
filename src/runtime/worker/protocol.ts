/**
 * What crosses the boundary between the page and the Worker engine: plain, structured-cloneable data only.
 *
 * Every engine method answers with a `Reply` instead of throwing, so an error keeps its class: the worker sends
 * `SerializedError` and the page rebuilds the same typed error (`name`, `message`, `instanceof`, and the fields
 * `DeviceLostError.reason` / `DownloadError.status`). Errors that are not webslm's own (a `TypeError`, a
 * `DOMException`) come back as plain `Error`s with their name and message.
 */
import {
  AbortError,
  ConfigError,
  DeviceLostError,
  DownloadError,
  GPUUnavailableError,
  GPUValidationError,
  OutOfMemoryError,
  QuotaError,
  SafetensorsError,
  TokenizerError,
  WebSLMError,
} from '../../errors.js';
import type { GenerationOptions } from '../../api/generation-config.js';
import type { DecoderConfig } from '../../models/config.js';
import type { ModelStats } from '../causal-lm.js';
import type { IdsInput } from '../inputs.js';
import { Tensor } from '../tensor.js';

export interface SerializedError {
  /** A webslm error class (rebuilt as that class), or any other error (rebuilt as `Error`). */
  typed: boolean;
  name: string;
  message: string;
  stack?: string;
  reason?: string;
  status?: number;
}

export type Reply<T> = { ok: true; value: T } | { ok: false; error: SerializedError };

const TYPED: Record<string, (s: SerializedError) => WebSLMError> = {
  WebSLMError: (s) => new WebSLMError(s.message),
  GPUUnavailableError: (s) => new GPUUnavailableError(s.message),
  DeviceLostError: (s) => new DeviceLostError(s.message, s.reason),
  OutOfMemoryError: (s) => new OutOfMemoryError(s.message),
  GPUValidationError: (s) => new GPUValidationError(s.message),
  ConfigError: (s) => new ConfigError(s.message),
  SafetensorsError: (s) => new SafetensorsError(s.message),
  TokenizerError: (s) => new TokenizerError(s.message),
  DownloadError: (s) => new DownloadError(s.message, s.status === undefined ? {} : { status: s.status }),
  QuotaError: (s) => new QuotaError(s.message),
  AbortError: (s) => new AbortError(s.message),
};

export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { typed: false, name: 'Error', message: String(e) };
  const out: SerializedError = { typed: e instanceof WebSLMError, name: e.name, message: e.message, stack: e.stack };
  if (e instanceof DeviceLostError) out.reason = e.reason;
  if (e instanceof DownloadError && e.status !== undefined) out.status = e.status;
  return out;
}

export function deserializeError(s: SerializedError): Error {
  const make = s.typed ? TYPED[s.name] : undefined;
  const e = make ? make(s) : Object.assign(new Error(s.message), { name: s.name });
  if (s.stack) e.stack = s.stack;
  return e;
}

export function ok<T>(value: T): Reply<T> {
  return { ok: true, value };
}

export function fail(e: unknown): Reply<never> {
  return { ok: false, error: serializeError(e) };
}

/** The value of a reply, or its error thrown as the typed error it was in the worker. */
export function unwrap<T>(reply: Reply<T>): T {
  if (reply.ok) return reply.value;
  throw deserializeError(reply.error);
}

/** `env`'s settings, copied into the worker before each load (the worker has its own `env`). */
export interface EnvSnapshot {
  remoteHost: string;
  remotePathTemplate: string;
  allowRemoteModels: boolean;
  localModelPath: string;
  useBrowserCache: boolean;
  cacheName: string;
  cacheDir: string;
}

/** The load options that travel to the worker (the rest are handled on the page or refused there). */
export interface WorkerLoadOptions {
  dtype?: string;
  group_size?: number;
  device?: string;
  max_context?: number;
  prefill_chunk_size?: number;
  max_gpu_memory?: number;
  max_binding_bytes?: number;
  revision?: string;
  headers?: Record<string, string>;
  /** Only `null` (no cache) crosses; unset means the worker's default cache. */
  cache?: null;
  retries?: number;
  backoffMs?: number;
  /** Already aborted when the call was made. */
  aborted?: boolean;
  /** A folder picked on the page (`modelFromFiles`): its `File`s by path, registered again in the worker. */
  localFiles?: { name: string; files: [string, File][] };
}

export interface LoadReply {
  handle: number;
  config: DecoderConfig;
  generation_config: GenerationOptions | null;
  maxContext: number;
  stats: ModelStats;
}

/** Token ids as plain arrays (a `Tensor` does not keep its class across the boundary). */
export type PlainIds = readonly number[] | readonly (readonly number[])[] | readonly bigint[] | readonly (readonly bigint[])[];

export function plainIds(ids: IdsInput): PlainIds;
export function plainIds(ids: IdsInput | undefined): PlainIds | undefined;
export function plainIds(ids: IdsInput | undefined): PlainIds | undefined {
  return ids instanceof Tensor ? (ids.tolist() as number[] | number[][]) : ids;
}

/** The serializable part of `GenerateOptions`. */
export interface WorkerGenerateOptions extends GenerationOptions {
  input_ids: PlainIds;
  attention_mask?: PlainIds;
  generation_config?: GenerationOptions;
}

export interface WorkerGenerateRequest {
  options: WorkerGenerateOptions;
  /** Post each step's new ids on the call's port (for a streamer, `token_callback` or stop strings on the page). */
  steps: boolean;
  /** Post `prompt` / `end` on the port (the page has a streamer). */
  streamer: boolean;
  /** The signal was already aborted when the call was made. */
  aborted: boolean;
}

export interface GenerateReply {
  rows: number[][];
  stats: ModelStats;
}

export interface ForwardReply {
  data: Float32Array;
  dims: number[];
  stats: ModelStats;
}

/** Worker → page on a generate call's port, in order; `done` is always last. */
export type StepMessage = { t: 'prompt' } | { t: 'step'; ids: number[] } | { t: 'end' } | { t: 'done' };

/**
 * Page → worker on a call's port: `abort` (the caller's signal: the call rejects with AbortError) or `stop` (the
 * page has finished the generation itself, e.g. on a stop string, and no longer listens).
 */
export type ControlMessage = { t: 'abort' } | { t: 'stop' };
