import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { StopStringMatcher } from '../../src/api/stop-strings.js';

describe('StopStringMatcher', () => {
  it('matches inside one chunk', () => {
    const m = new StopStringMatcher(['END']);
    expect(m.push('hello ')).toBe(false);
    expect(m.push('the END here')).toBe(true);
    expect(m.matched).toBe('END');
  });

  it('matches across chunk boundaries', () => {
    const m = new StopStringMatcher(['</answer>']);
    const chunks = ['x </', 'ans', 'w', 'er', '> tail'];
    const results = chunks.map((c) => m.push(c));
    expect(results).toEqual([false, false, false, false, true]);
  });

  it('every split of the text finds the stop exactly when it is complete', () => {
    const text = 'abcab\ncab\nstop\nmore';
    const stop = 'b\nst';
    const at = text.indexOf(stop) + stop.length;
    for (let i = 1; i < text.length; i++) {
      for (let j = i + 1; j <= text.length; j++) {
        const m = new StopStringMatcher(['zzz', stop]);
        const parts = [text.slice(0, i), text.slice(i, j), text.slice(j)];
        let end = 0;
        let hitAfter = -1;
        for (const p of parts) {
          end += p.length;
          if (m.push(p) && hitAfter < 0) hitAfter = end;
        }
        expect(hitAfter).toBeGreaterThanOrEqual(at);
        expect(hitAfter === text.length || hitAfter === j || hitAfter === i).toBe(true);
      }
    }
  });

  it('one character at a time', () => {
    const m = new StopStringMatcher(['\n\n', 'Human:']);
    const text = 'The answer is 4.\nHuman: next';
    let stoppedAt = -1;
    for (let i = 0; i < text.length; i++) {
      if (m.push(text[i])) {
        stoppedAt = i;
        break;
      }
    }
    expect(stoppedAt).toBe(text.indexOf('Human:') + 'Human:'.length - 1);
    expect(m.matched).toBe('Human:');
  });

  it('stays matched; reset starts over', () => {
    const m = new StopStringMatcher(['ab']);
    expect(m.push('a')).toBe(false);
    expect(m.push('b')).toBe(true);
    expect(m.push('zzz')).toBe(true);
    m.reset();
    expect(m.done).toBe(false);
    expect(m.push('b')).toBe(false);
  });

  it('single-character stops and no stops', () => {
    const m = new StopStringMatcher(['.']);
    expect(m.push('abc')).toBe(false);
    expect(m.push('d.')).toBe(true);
    const none = new StopStringMatcher([]);
    expect(none.push('anything at all')).toBe(false);
  });

  it('multi-code-unit characters (emoji) across chunks', () => {
    const m = new StopStringMatcher(['😀!']);
    expect(m.push('x\ud83d')).toBe(false);
    expect(m.push('\ude00')).toBe(false);
    expect(m.push('!')).toBe(true);
  });

  it('keeps a bounded tail', () => {
    const m = new StopStringMatcher(['abcdef', 'xy']);
    for (let i = 0; i < 1000; i++) m.push('0123456789');
    expect((m as unknown as { tail: string }).tail.length).toBeLessThanOrEqual(5);
  });

  it('rejects empty stop strings', () => {
    expect(() => new StopStringMatcher([''])).toThrow(ConfigError);
  });
});
