/** `AutoTokenizer.from_pretrained(id)`: a tokenizer from a Hub repo, a folder URL or (in Node) a local folder. */
import { DownloadError, TokenizerError } from '../errors.js';
import { readModelFileText, type ModelFileOptions } from '../hub/model-files.js';
import { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';

export class AutoTokenizer {
  static async from_pretrained(model: string, options: ModelFileOptions = {}): Promise<PreTrainedTokenizer> {
    const [json, configText] = await Promise.all([
      readModelFileText(model, 'tokenizer.json', options),
      readModelFileText(model, 'tokenizer_config.json', options).catch((e) => {
        if (e instanceof DownloadError && e.status === 404) return null; // optional file
        throw e;
      }),
    ]);
    let config: Record<string, unknown> = {};
    if (configText !== null) {
      try {
        config = JSON.parse(configText);
      } catch (e) {
        throw new TokenizerError(`tokenizer_config.json of "${model}" is not valid JSON: ${e instanceof Error ? e.message : e}`);
      }
    }
    return PreTrainedTokenizer.fromJSON(json, config);
  }
}
