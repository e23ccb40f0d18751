/**
 * Download progress from `progress_callback`: one row per file (initiate → download → progress → done) and a bar
 * for the total over every file whose size is known.
 */
import type { ProgressInfo } from '../src/index.js';
import { $, el, formatBytes } from './dom.js';

interface FileRow {
  row: HTMLLIElement;
  fill: HTMLDivElement;
  text: HTMLSpanElement;
  loaded: number;
  total: number | null;
  source: 'cache' | 'network' | 'disk';
  done: boolean;
}

export class ProgressView {
  private readonly files = new Map<string, FileRow>();
  private readonly box = $('progress');
  private readonly list = $<HTMLUListElement>('progress-files');
  private readonly totalBar = $<HTMLDivElement>('progress-total-bar');
  private readonly totalText = $('progress-total-text');
  private localFiles = false;

  reset(localFiles: boolean): void {
    this.files.clear();
    this.list.replaceChildren();
    this.localFiles = localFiles;
    this.box.hidden = false;
    this.box.dataset.state = 'loading';
    this.render();
  }

  finish(): void {
    this.box.dataset.state = 'done';
    for (const [file, f] of this.files) {
      // Optional files the model does not have (such as a shard index) were looked for, and never started.
      if (!f.done && f.total === null) {
        f.row.remove();
        this.files.delete(file);
      }
    }
    this.render();
  }

  handle = (info: ProgressInfo): void => {
    if (info.status === 'ready' || info.status === 'progress_total' || !info.file) return;
    let f = this.files.get(info.file);
    if (!f) {
      const fill = el('div', { className: 'fill' });
      const text = el('span', { className: 'small muted' });
      const row = el('li', { data: { file: info.file } }, el('span', { className: 'file', text: info.file }), text, el('div', { className: 'bar thin' }, fill));
      this.list.append(row);
      f = { row, fill, text, loaded: 0, total: null, source: this.localFiles ? 'disk' : 'cache', done: false };
      this.files.set(info.file, f);
    }
    if (info.status === 'download') f.source = 'network';
    if (info.total !== undefined) f.total = info.total;
    if (info.loaded !== undefined) f.loaded = info.loaded;
    if (info.status === 'done') {
      f.done = true;
      if (f.total !== null) f.loaded = f.total;
    }
    this.render();
  };

  private render(): void {
    let loaded = 0;
    let total = 0;
    for (const f of this.files.values()) {
      const size = f.total ?? (f.done ? f.loaded : null);
      if (size !== null) {
        total += size;
        loaded += Math.min(f.loaded, size);
      }
      const pct = size ? (100 * f.loaded) / size : f.done ? 100 : 0;
      f.fill.style.width = `${pct.toFixed(1)}%`;
      f.row.dataset.state = f.done ? 'done' : 'loading';
      f.row.dataset.source = f.source;
      const from = f.source === 'network' ? 'downloaded' : f.source === 'disk' ? 'from disk' : 'from cache';
      f.text.textContent = f.done ? `${formatBytes(size)} · ${from}` : `${formatBytes(f.loaded)} / ${formatBytes(f.total)}`;
    }
    const pct = total > 0 ? (100 * loaded) / total : 0;
    this.totalBar.style.width = `${pct.toFixed(1)}%`;
    const files = this.files.size;
    this.totalText.textContent = `${formatBytes(loaded)} of ${formatBytes(total)} · ${files} file${files === 1 ? '' : 's'} · ${pct.toFixed(0)}%`;
    this.box.dataset.loaded = String(loaded);
    this.box.dataset.total = String(total);
  }
}
