/**
 * The byte ↔ character table of byte-level BPE (GPT-2 and descendants): each of the 256 byte values is shown as a
 * printable Unicode character, so a byte string becomes a normal string the BPE vocabulary can hold. Printable
 * Latin-1 bytes map to themselves; the other 68 map to U+0100 onwards, in byte order.
 */
function buildTables(): { byteToChar: string[]; charToByte: Map<number, number> } {
  const byteToChar: string[] = new Array(256);
  const charToByte = new Map<number, number>();
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    const cp = printable(b) ? b : next++;
    byteToChar[b] = String.fromCharCode(cp);
    charToByte.set(cp, b);
  }
  return { byteToChar, charToByte };
}

const tables = buildTables();

/** BYTE_TO_CHAR[b] is the character that stands for byte b. */
export const BYTE_TO_CHAR: readonly string[] = tables.byteToChar;
/** Character code (all are in the BMP) → byte, for the 256 characters of the table. */
export const CHAR_TO_BYTE: ReadonlyMap<number, number> = tables.charToByte;

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`, each shown as its table character. */
export function toByteLevel(text: string): string {
  const bytes = encoder.encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]];
  return out;
}
