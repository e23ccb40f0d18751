/** The cache panel: the models kept in IndexedDB with their sizes, a delete button each, and the storage used. */
import { ModelCache, type CachedModel } from '../src/index.js';
import { $, el, errorMessage, formatBytes } from './dom.js';

export class CachePanel {
  private readonly list = $<HTMLUListElement>('cache-list');
  private readonly usage = $('cache-usage');
  private readonly usageBar = $<HTMLDivElement>('cache-usage-bar');
  /** Turns a cache key (URL, Hub id) into the short name the model picker shows. */
  private readonly label: (model: string) => string;
  models: CachedModel[] = [];

  constructor(label: (model: string) => string) {
    this.label = label;
    $('cache-refresh').addEventListener('click', () => void this.refresh());
  }

  async refresh(): Promise<void> {
    try {
      const [models, usage] = await Promise.all([ModelCache.list(), ModelCache.usage()]);
      this.models = models;
      const cached = models.reduce((sum, m) => sum + m.size, 0);
      this.usage.dataset.cachedBytes = String(cached);
      this.usage.dataset.usage = String(usage.usage ?? '');
      const quota = usage.quota ? ` of ${formatBytes(usage.quota)} allowed` : '';
      this.usage.textContent =
        `${models.length} model${models.length === 1 ? '' : 's'}, ${formatBytes(cached)} cached · site storage ` +
        `${usage.usage === null ? 'unknown' : formatBytes(usage.usage)}${quota}`;
      this.usageBar.style.width = usage.usage !== null && usage.quota ? `${Math.max(0.5, (100 * usage.usage) / usage.quota).toFixed(1)}%` : '0%';
      this.list.replaceChildren(...models.map((m) => this.row(m)));
      if (models.length === 0) this.list.append(el('li', { className: 'muted small empty', text: 'Nothing cached yet.' }));
    } catch (e) {
      this.usage.textContent = `The cache cannot be read: ${errorMessage(e)}`;
    }
  }

  private row(m: CachedModel): HTMLLIElement {
    const remove = el('button', { className: 'ghost small danger', text: 'Delete', data: { testid: 'cache-delete' } });
    remove.type = 'button';
    remove.title = `Delete the cached files of ${m.model}`;
    remove.addEventListener('click', async () => {
      remove.disabled = true;
      await ModelCache.delete(m.model, m.revision);
      await this.refresh();
    });
    const files = `${m.files.length} file${m.files.length === 1 ? '' : 's'}`;
    const revision = m.revision === 'main' ? '' : ` @ ${m.revision}`;
    const info = el(
      'div',
      { className: 'cache-info' },
      el('span', { className: 'cache-name', text: this.label(m.model) + revision }),
      el('span', { className: 'small muted', text: `${formatBytes(m.size)} · ${files}` }),
    );
    info.title = m.model;
    return el('li', { data: { testid: 'cache-item', model: m.model } }, info, remove);
  }
}
