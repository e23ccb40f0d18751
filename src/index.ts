// Public exports only.
export {
  WebSLMError,
  GPUUnavailableError,
  DeviceLostError,
  OutOfMemoryError,
  GPUValidationError,
  ConfigError,
  SafetensorsError,
  TokenizerError,
  DownloadError,
  QuotaError,
  AbortError,
} from './errors.js';
export { GPUContext, OPTIONAL_FEATURES } from './runtime/gpu-context.js';
export type { GPUContextOptions, AdapterSummary, OptionalFeature } from './runtime/gpu-context.js';
export { env } from './api/env.js';
export type { Env } from './api/env.js';
export { AutoTokenizer } from './api/auto-tokenizer.js';
export { PreTrainedTokenizer } from './tokenizer/tokenizer.js';
export type {
  CallOptions,
  EncodeOptions,
  DecodeOptions,
  BatchEncoding,
  Encoding,
} from './tokenizer/tokenizer.js';
export type { ChatMessage, ChatTemplateOptions } from './tokenizer/chat-template.js';
export { IncrementalDecoder } from './tokenizer/streaming.js';
export { ModelCache } from './api/model-cache.js';
export type { CachedModel, StorageUsage } from './api/model-cache.js';
export { modelFromFiles, forgetModelFiles } from './hub/local-files.js';
export type { ProgressInfo, ProgressCallback, ModelFileOptions } from './hub/model-files.js';
