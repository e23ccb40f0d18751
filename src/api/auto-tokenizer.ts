/** `AutoTokenizer.from_pretrained(id)`: a tokenizer from a Hub repo, a folder URL or (in Node) a local folder. */
import { readModelText, type FileOptions } from '../hub/files.js';
import { TokenizerError } from '../errors.js';
import { PreTrainedTokenizer } from '../tokenizer/tokenizer.js';

export class AutoTokenizer {
  static async from_pretrained(model: string, options: FileOptions = {}): Promise<PreTrainedTokenizer> {
    const [json, configText] = await Promise.all([
      readModelText(model, 'tokenizer.json', options),
      readModelText(model, 'tokenizer_config.json', { ...options, optional: true }),
    ]);
    let config: Record<string, unknown> = {};
    if (configText !== null) {
      try {
        config = JSON.parse(configText);
      } catch (e) {
        throw new TokenizerError(`tokenizer_config.json of "${model}" is not valid JSON: ${e instanceof Error ? e.message : e}`);
      }
    }
    return PreTrainedTokenizer.fromJSON(json!, config);
  }
}
