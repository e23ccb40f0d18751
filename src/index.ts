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
export { AutoConfig } from './api/auto-config.js';
export type { PretrainedConfig } from './api/auto-config.js';
export { AutoModelForCausalLM } from './api/auto-model.js';
export type { ModelLoadOptions, ModelDtype } from './api/auto-model.js';
export { CausalLM } from './runtime/causal-lm.js';
export { RemoteCausalLM } from './runtime/worker/remote-model.js';
export type { ForwardInputs, ForwardOutput, GenerateOptions, ModelStats, StepStats } from './runtime/causal-lm.js';
export { Tensor } from './runtime/tensor.js';
export type { TensorType } from './runtime/tensor.js';
export { GENERATION_DEFAULTS } from './api/generation-config.js';
export type { GenerationOptions } from './api/generation-config.js';
export { BaseStreamer, TextStreamer, TextIteratorStreamer } from './api/streamers.js';
export type { TextStreamerOptions } from './api/streamers.js';
export { pipeline, TextGenerationPipeline, SUPPORTED_TASKS } from './api/pipeline.js';
export type {
  PipelineTask,
  PipelineOptions,
  TextGenerationModel,
  LoadedCausalLM,
  TextGenerationCallOptions,
  TextGenerationOutput,
  ChatGenerationOutput,
} from './api/pipeline.js';
export { SUPPORTED_MODEL_TYPES } from './models/config.js';
export { RUNNABLE_MODEL_TYPES } from './models/registry.js';
export { ModelCache } from './api/model-cache.js';
export type { CachedModel, StorageUsage } from './api/model-cache.js';
export { modelFromFiles, forgetModelFiles } from './hub/local-files.js';
export type { ProgressInfo, ProgressCallback, ModelFileOptions } from './hub/model-files.js';
