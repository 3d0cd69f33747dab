// Experts (and admins) re-rank this series' review queue with a chosen strategy (POST /api/queue/rebuild):
// after a new model, to try another strategy, or to ask for double reading.
import { api } from '../api';
import { countOf, h, replaceChildren } from '../dom';

// What each strategy asks about, in a reader's words (docs/active_learning.md has the measurements).
const STRATEGY_HINTS: Record<string, string> = {
  typiclust_bald: 'typical examples first, then what the model is unsure of (the best measured)',
  density_bald: 'model uncertainty weighted by how typical the location is',
  diverse_mc_dropout: 'model uncertainty (MC dropout), spread over the series',
  diverse_entropy: 'prediction entropy, spread over the series',
  mc_dropout: 'model uncertainty (MC dropout)',
  typiclust: 'typical examples of every region',
  coreset: 'spread over the series only',
  entropy: 'prediction entropy (stored scores, instant)',
  margin: 'smallest margin between the top two classes (stored scores, instant)',
  least_confidence: 'lowest top-class probability (stored scores, instant)',
  random: 'random sample (baseline)',
};

export class QueueRebuildBox {
  readonly element: HTMLElement;
  private readonly strategy = h('select', { id: 'rebuild-strategy', 'data-testid': 'rebuild-strategy', disabled: true });
  private readonly batch = h('input', { id: 'rebuild-batch', type: 'number', min: '1', max: '500', value: '20', 'data-testid': 'rebuild-batch' });
  private readonly double = h('input', { id: 'rebuild-double', type: 'checkbox', 'data-testid': 'rebuild-double' });
  private readonly button = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'rebuild-queue', disabled: true }, 'Rebuild queue');
  private readonly status = h('p', { className: 'small', 'aria-live': 'polite', 'data-testid': 'rebuild-status' });
  private readonly current = h('p', { className: 'small muted', 'data-testid': 'rebuild-current' }, 'Loading the queue…');

  constructor(private readonly seriesUid: string) {
    this.element = h('div', { className: 'side-section rebuild-box', 'data-testid': 'rebuild-box' },
      h('h2', {}, 'Review queue'),
      this.current,
      h('div', { className: 'inline-field' }, h('label', { for: 'rebuild-strategy' }, 'Strategy'), this.strategy),
      h('div', { className: 'inline-field' }, h('label', { for: 'rebuild-batch' }, 'Items'), this.batch),
      h('div', { className: 'inline-field' }, this.double, h('label', { for: 'rebuild-double' }, 'Two independent labels per item')),
      this.button, this.status);
    this.button.addEventListener('click', () => void this.rebuild());
  }

  async load(): Promise<void> {
    void this.showCurrent();
    try {
      const { strategies, default: preferred } = await api.queueStrategies();
      replaceChildren(this.strategy, strategies.map((name) =>
        h('option', { value: name, selected: name === preferred, title: STRATEGY_HINTS[name] ?? '' },
          name === preferred ? `${name} (default)` : name)));
      this.strategy.disabled = false;
      this.button.disabled = false;
    } catch (error) {
      this.fail(`Could not load the strategies: ${(error as Error).message}`);
    }
  }

  private async rebuild(): Promise<void> {
    const batch = Number(this.batch.value);
    if (!Number.isInteger(batch) || batch < 1 || batch > 500) {
      this.fail('Items must be a whole number from 1 to 500.');
      return;
    }
    this.button.disabled = true;
    this.status.className = 'small';
    replaceChildren(this.status, 'Ranking the candidates…');
    try {
      const items = await api.rebuildQueue(this.seriesUid, this.strategy.value, batch, this.double.checked ? 2 : 1);
      const slices = new Set(items.map((i) => i.slice_index)).size;
      this.status.dataset.state = 'done';
      replaceChildren(this.status, `${countOf(items.length, 'item')} queued by ${this.strategy.value} over ${countOf(slices, 'slice')}.`);
      void this.showCurrent();
    } catch (error) {
      this.fail(`The queue was not rebuilt: ${(error as Error).message}`);
    } finally {
      this.button.disabled = false;
    }
  }

  /** What annotators get now: the series' open items and the strategy that ranked them. */
  private async showCurrent(): Promise<void> {
    try {
      const page = await api.queueItems(this.seriesUid);
      const strategies = [...new Set(page.results.map((i) => i.strategy))].join(', ');
      this.current.dataset.count = String(page.count);
      replaceChildren(this.current, page.count === 0
        ? 'No open items for this series.'
        : `${countOf(page.count, 'open item')} (${strategies}).`);
    } catch (error) {
      replaceChildren(this.current, `Could not read the queue: ${(error as Error).message}`);
    }
  }

  private fail(message: string): void {
    this.status.className = 'small error-text';
    this.status.dataset.state = 'error';
    replaceChildren(this.status, message);
  }
}
