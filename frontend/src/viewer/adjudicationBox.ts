// Adjudication mode of the viewer (?adjudicate=<item>): the labels that disagree at the item's location, and the
// expert's decision with a reason (POST /api/adjudications/{id}).
import { api } from '../api';
import { formatPercent, h, replaceChildren, submitOnEnter } from '../dom';
import { labelChip, openNextAdjudication } from '../pages/queuePage';
import { LABEL_CLASS_NAMES, LABEL_CLASSES, type AdjudicationItem, type LabelClass } from '../types';
import { CLASS_COLOURS } from './markerLayer';

export interface AdjudicationHost {
  /** The decision added a label: reload the series' labels. */
  decided(): void;
  focusViewport(): void;
}

export class AdjudicationBox {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private item: AdjudicationItem | null = null;
  private choice: LabelClass | null = null;
  private reason = '';
  private saving = false;
  private decidedClass: LabelClass | null = null;
  private error = '';

  constructor(private readonly itemId: string, private readonly host: AdjudicationHost) {
    this.body = h('div', {}, h('p', { className: 'muted small' }, 'Loading the disputed item…'));
    this.element = h('div', { className: 'side-section adjudication-box', 'data-testid': 'adjudication-box' },
      h('h2', {}, 'Adjudication'), this.body);
  }

  async load(): Promise<void> {
    try {
      this.item = await api.adjudication(this.itemId);
    } catch (error) {
      replaceChildren(this.body, h('p', { className: 'error-text small' }, `Could not load item ${this.itemId}: ${(error as Error).message}`), this.nextButton());
      return;
    }
    this.render();
  }

  /** Awaiting a decision: 1–4 choose its class. */
  isOpen(): boolean {
    return this.item?.status === 'adjudication' && !this.decidedClass;
  }

  pickClass(labelClass: LabelClass): void {
    if (!this.isOpen()) return;
    this.choice = labelClass;
    this.render();
    this.body.querySelector<HTMLTextAreaElement>('[data-testid=adjudicate-reason]')?.focus();
  }

  private nextButton(): HTMLElement {
    const next = h('button', { type: 'button', className: 'btn btn-small btn-primary', 'data-testid': 'adjudication-next' }, 'Next disputed item');
    next.addEventListener('click', async () => {
      next.disabled = true;
      try {
        if (!(await openNextAdjudication())) replaceChildren(this.body, h('p', { className: 'small', 'data-testid': 'adjudication-empty' }, 'No more disputed items.'));
      } catch (error) {
        this.error = `Could not get the next item: ${(error as Error).message}`;
        this.render();
      } finally {
        next.disabled = false;
      }
    });
    return next;
  }

  private render(): void {
    const item = this.item;
    if (!item) return;
    const disputed = item.labels.filter((l) => !l.is_adjudication);
    const model = LABEL_CLASSES.filter((c) => item.probs?.[c] !== undefined).map((c) => `${c} ${formatPercent(item.probs[c])}`).join(' · ');
    const parts: (HTMLElement | null)[] = [
      h('p', { className: 'small' }, `Item ${item.id} · slice ${item.slice_index + 1} at (${item.x ?? '–'}, ${item.y ?? '–'}). Independent labels:`),
      h('div', { className: 'chips', 'data-testid': 'adjudication-labels' },
        disputed.map((l) => labelChip(l.annotator, l.label_class, l.comment ? ` “${l.comment}”` : ''))),
      model ? h('p', { className: 'muted small' }, `Model: ${model}`) : null,
    ];
    if (this.decidedClass || item.status !== 'adjudication') {
      const result = this.decidedClass ?? item.consensus_class;
      parts.push(h('p', { className: 'banner banner-ok small', 'data-testid': 'adjudication-done' },
        this.decidedClass ? `Decided: ${result}. The item is closed.` : `No longer disputed (${item.status}${result ? `: ${result}` : ''}).`),
      this.nextButton());
    } else {
      parts.push(this.renderForm());
    }
    if (this.error) parts.push(h('p', { className: 'error-text small', role: 'alert' }, this.error));
    replaceChildren(this.body, parts);
  }

  private renderForm(): HTMLElement {
    const reason = h('textarea', { rows: 2, required: true, maxlength: '1000', placeholder: 'Reason for the decision (required)', 'aria-label': 'Reason for the decision', 'data-testid': 'adjudicate-reason' });
    reason.value = this.reason;
    const save = h('button', { type: 'submit', className: 'btn btn-small btn-primary', 'data-testid': 'adjudicate-save' }, 'Decide');
    const updateSave = (): void => {
      save.disabled = this.saving || !this.choice || !this.reason.trim();
    };
    const buttons = h('div', { className: 'class-buttons', role: 'group', 'aria-label': 'Decision' },
      LABEL_CLASSES.map((c, i) => {
        const button = h('button', {
          type: 'button', className: 'btn btn-small class-btn', style: `--class-colour: ${CLASS_COLOURS[c]}`,
          title: `${LABEL_CLASS_NAMES[c]} (${i + 1})`, 'aria-pressed': String(c === this.choice), 'data-testid': `adjudicate-class-${c}`,
        }, `${i + 1} ${c}`);
        button.addEventListener('click', () => this.pickClass(c));
        return button;
      }));
    const form = h('form', { className: 'relabel-form', 'data-testid': 'adjudicate-form' },
      h('p', { className: 'small' }, this.choice ? `Decide ${this.choice} (${LABEL_CLASS_NAMES[this.choice]}): give a reason, Enter saves.` : 'Choose the class (1–4), give a reason, Enter saves.'),
      buttons, reason, h('div', { className: 'relabel-actions' }, save));
    reason.addEventListener('input', () => {
      this.reason = reason.value;
      updateSave();
    });
    submitOnEnter(reason, form, () => this.host.focusViewport());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.decide();
    });
    updateSave();
    return form;
  }

  private async decide(): Promise<void> {
    if (!this.item || !this.choice || !this.reason.trim()) {
      this.error = !this.choice ? 'Choose a class first (1–4).' : 'A reason is required.';
      this.render();
      return;
    }
    this.saving = true;
    this.error = '';
    try {
      const label = await api.adjudicate(this.item.id, this.choice, this.reason.trim());
      this.decidedClass = label.label_class;
      this.host.decided();
    } catch (error) {
      this.error = `Could not save the decision: ${(error as Error).message}`;
    } finally {
      this.saving = false;
    }
    this.render();
    if (this.decidedClass) this.body.querySelector<HTMLButtonElement>('[data-testid=adjudication-next]')?.focus();
  }
}
