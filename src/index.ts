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
