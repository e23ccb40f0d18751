/**
 * Typed errors. Every failure a user can act on is a subclass of `WebSLMError`, so callers can branch on
 * `instanceof` (or on `name`, which survives structured cloning across a Worker boundary) and messages name
 * the file, tensor or field at fault.
 */

export interface WebSLMErrorOptions {
  cause?: unknown;
}

export class WebSLMError extends Error {
  constructor(message: string, options: WebSLMErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // `new.target.name` keeps subclass names without repeating them in every constructor.
    this.name = new.target.name;
  }
}

/** No WebGPU at all, or no adapter/device could be obtained. */
export class GPUUnavailableError extends WebSLMError {}

/** The GPU device was lost (driver reset, tab backgrounded too long, dispose elsewhere). Reload the model. */
export class DeviceLostError extends WebSLMError {
  readonly reason: string;
  constructor(message: string, reason = 'unknown', options: WebSLMErrorOptions = {}) {
    super(message, options);
    this.reason = reason;
  }
}

/** A GPU allocation failed, or would exceed the device's limits. */
export class OutOfMemoryError extends WebSLMError {}

/** WebGPU rejected a call (a bug in webslm, or limits the device cannot meet). */
export class GPUValidationError extends WebSLMError {}

/** Malformed or unsupported `config.json` / `generation_config.json`. */
export class ConfigError extends WebSLMError {}

/** Malformed or unsupported safetensors header, index or tensor. */
export class SafetensorsError extends WebSLMError {}

/** Malformed or unsupported `tokenizer.json` / `tokenizer_config.json`, or bad tokenizer input. */
export class TokenizerError extends WebSLMError {}

/** A file could not be fetched (HTTP status, network, size mismatch). */
export class DownloadError extends WebSLMError {
  /** The HTTP status that caused it, when there was one (404: the file is not there). */
  readonly status?: number;
  constructor(message: string, options: WebSLMErrorOptions & { status?: number } = {}) {
    super(message, options);
    if (options.status !== undefined) this.status = options.status;
  }
}

/** Not enough browser storage quota for a download. */
export class QuotaError extends WebSLMError {}

/** An operation was cancelled through its `AbortSignal`. */
export class AbortError extends WebSLMError {}
