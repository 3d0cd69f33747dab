// Expert review in the viewer: the labels of the current slice with their version history, and relabelling a
// colleague's label with a mandatory reason (POST /api/labels/{id}/relabel; the API refuses other roles).
import { api, ApiError } from '../api';
import { formatDateTime, h, replaceChildren, submitOnEnter } from '../dom';
import { LABEL_CLASS_NAMES, LABEL_CLASSES, sameLabelId, type Label, type LabelClass, type LabelRevision } from '../types';
import { CLASS_COLOURS } from './markerLayer';

export interface LabelReviewHost {
  /** Labels on the slice shown now. */
  labelsOnSlice(): Label[];
  selectedId(): Label['id'] | null;
  select(id: Label['id'] | null): void;
  /** The server's new state of a relabelled label. */
  relabelled(label: Label): void;
  focusViewport(): void;
}

interface HistoryEntry {
  version: number | undefined;
  revisions: LabelRevision[] | null;
  error: string;
}

const ACTION_TEXT: Record<LabelRevision['action'], string> = {
  create: 'created', update: 'edited', relabel: 'relabelled', delete: 'deleted', import: 'imported',
};

/** "v2 relabelled TB → FM", "v3 edited (moved)": what changed from the previous version. */
function describe(revision: LabelRevision, previous: LabelRevision | undefined): string {
  let what = `v${revision.version} ${ACTION_TEXT[revision.action] ?? revision.action}`;
  if (!previous) return `${what} as ${revision.label_class}`;
  if (previous.label_class !== revision.label_class) what += ` ${previous.label_class} → ${revision.label_class}`;
  else if (previous.x !== revision.x || previous.y !== revision.y || previous.slice_index !== revision.slice_index) what += ' (moved)';
  else if (previous.comment !== revision.comment) what += ' (comment)';
  return what;
}

export class LabelReview {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly history = new Map<string, HistoryEntry>();
  private draftFor: string | null = null;
  private draftClass: LabelClass | null = null;
  private draftReason = '';
  private saving = false;
  private message = '';
  private signature = '';

  constructor(private readonly host: LabelReviewHost) {
    this.body = h('div', { className: 'review-body' });
    this.element = h('div', { className: 'side-section side-grow review-section', 'data-testid': 'label-review' },
      h('h2', {}, 'Expert review: labels on this slice'),
      this.body);
  }

  /** A colleague's label is selected, so 1–4 choose its new class. */
  canPick(): boolean {
    const selected = this.selected();
    return Boolean(selected && !selected.is_mine);
  }

  pickClass(labelClass: LabelClass): void {
    const selected = this.selected();
    if (!selected || selected.is_mine) return;
    this.startDraft(selected);
    this.draftClass = labelClass === selected.label_class ? null : labelClass;
    this.render(true);
    this.body.querySelector<HTMLTextAreaElement>('[data-testid=relabel-reason]')?.focus();
  }

  /** Select the next / previous label on this slice ([ and ]). */
  cycle(step: 1 | -1): void {
    const onSlice = this.host.labelsOnSlice();
    if (onSlice.length === 0) return;
    const at = onSlice.findIndex((l) => sameLabelId(l.id, this.host.selectedId()));
    const next = at < 0 ? (step === 1 ? 0 : onSlice.length - 1) : (at + step + onSlice.length) % onSlice.length;
    this.host.select(onSlice[next]!.id);
  }

  /** Re-render when what is shown changed (not on every redraw: that would steal the reason field's focus). */
  render(force = false): void {
    const onSlice = this.host.labelsOnSlice();
    const selected = this.selected();
    if (selected && this.draftFor !== String(selected.id)) this.startDraft(selected);
    for (const label of onSlice) this.ensureHistory(label);
    const signature = JSON.stringify([
      onSlice.map((l) => [l.id, l.label_class, l.version, this.history.get(String(l.id))?.revisions?.length ?? -1]),
      selected?.id ?? null, this.draftClass, this.saving, this.message,
    ]);
    if (!force && signature === this.signature) return;
    this.signature = signature;
    if (onSlice.length === 0) {
      replaceChildren(this.body, h('p', { className: 'muted small', 'data-testid': 'review-empty' }, 'No labels on this slice.'));
      return;
    }
    replaceChildren(this.body,
      h('p', { className: 'muted small' }, 'Select a label (click, or [ and ]) to see who changed it and to relabel a colleague\'s label.'),
      this.message ? h('p', { className: 'banner banner-ok small', role: 'status', 'data-testid': 'relabel-saved' }, this.message) : null,
      onSlice.map((label) => this.renderLabel(label, selected)));
  }

  private selected(): Label | undefined {
    const id = this.host.selectedId();
    return this.host.labelsOnSlice().find((l) => sameLabelId(l.id, id));
  }

  private startDraft(label: Label): void {
    if (this.draftFor === String(label.id)) return;
    this.draftFor = String(label.id);
    this.draftClass = null;
    this.draftReason = '';
    this.message = '';
  }

  private ensureHistory(label: Label): void {
    const key = String(label.id);
    const known = this.history.get(key);
    if (known && (known.version === label.version || known.error || known.revisions === null)) return;
    const entry: HistoryEntry = { version: label.version, revisions: null, error: '' };
    this.history.set(key, entry);
    api.labelHistory(label.id).then((revisions) => {
      entry.revisions = revisions;
    }, (error: unknown) => {
      entry.error = (error as Error).message;
    }).finally(() => this.render(true));
  }

  private renderLabel(label: Label, selected: Label | undefined): HTMLElement {
    const isSelected = Boolean(selected && sameLabelId(selected.id, label.id));
    const head = h('button', { type: 'button', className: 'review-head', 'aria-expanded': String(isSelected), 'data-testid': 'review-select' },
      h('span', { className: 'swatch', style: `background: ${CLASS_COLOURS[label.label_class]}` }),
      h('strong', {}, label.label_class),
      ` · ${label.is_mine ? 'you' : label.annotator}${label.version ? ` · v${label.version}` : ''}${label.is_adjudication ? ' · adjudication' : ''}`,
      h('span', { className: 'muted small' }, ` (${label.x}, ${label.y})`));
    head.addEventListener('click', () => this.host.select(isSelected ? null : label.id));
    return h('article', {
      className: `review-label${isSelected ? ' selected' : ''}`, 'data-testid': 'review-label',
      'data-label-id': String(label.id), 'data-label-class': label.label_class,
    }, head, this.renderHistory(label), isSelected && !label.is_mine ? this.renderForm(label) : null);
  }

  private renderHistory(label: Label): HTMLElement {
    const entry = this.history.get(String(label.id));
    if (!entry || (!entry.revisions && !entry.error)) return h('p', { className: 'muted small' }, 'Loading history…');
    if (entry.error) return h('p', { className: 'error-text small' }, `History unavailable: ${entry.error}`);
    const revisions = entry.revisions ?? [];
    return h('ol', { className: 'label-history', 'data-testid': 'label-history', 'aria-label': `History of the ${label.label_class} label` },
      revisions.map((revision, i) => h('li', { 'data-testid': 'history-entry', 'data-action': revision.action, 'data-version': String(revision.version) },
        h('span', { className: 'history-what' }, describe(revision, revisions[i - 1])),
        h('span', { className: 'muted' }, ` by ${revision.actor ?? 'unknown'} · `, h('time', { datetime: revision.created }, formatDateTime(revision.created))),
        revision.reason ? h('q', { className: 'history-reason', 'data-testid': 'history-reason' }, revision.reason) : null)));
  }

  private renderForm(label: Label): HTMLElement {
    const reason = h('textarea', {
      rows: 2, required: true, maxlength: '1000', placeholder: 'Reason (required, kept in the history)',
      'aria-label': 'Reason for the new class', 'data-testid': 'relabel-reason',
    });
    reason.value = this.draftReason;
    const save = h('button', { type: 'submit', className: 'btn btn-small btn-primary', 'data-testid': 'relabel-save' }, 'Relabel');
    const cancel = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'relabel-cancel' }, 'Cancel');
    const error = h('p', { className: 'error-text small', role: 'alert', 'data-testid': 'relabel-error' });
    const updateSave = (): void => {
      save.disabled = this.saving || !this.draftClass || !this.draftReason.trim();
      save.title = !this.draftClass ? 'Choose a new class (1–4)' : !this.draftReason.trim() ? 'Give a reason' : '';
    };
    const buttons = h('div', { className: 'class-buttons', role: 'group', 'aria-label': 'New class' },
      LABEL_CLASSES.map((c, i) => {
        const isCurrent = c === label.label_class;
        const button = h('button', {
          type: 'button', className: `btn btn-small class-btn${isCurrent ? ' current' : ''}`, disabled: isCurrent,
          style: `--class-colour: ${CLASS_COLOURS[c]}`, title: isCurrent ? 'Current class' : `${LABEL_CLASS_NAMES[c]} (${i + 1})`,
          'aria-pressed': String(c === this.draftClass), 'data-testid': `relabel-class-${c}`,
        }, `${i + 1} ${c}`);
        button.addEventListener('click', () => {
          this.draftClass = c;
          this.render(true);
          this.body.querySelector<HTMLTextAreaElement>('[data-testid=relabel-reason]')?.focus();
        });
        return button;
      }));
    const form = h('form', { className: 'relabel-form', 'data-testid': 'relabel-form' },
      h('p', { className: 'small' }, this.draftClass
        ? `Relabel ${label.annotator}'s ${label.label_class} as ${this.draftClass} (${LABEL_CLASS_NAMES[this.draftClass]}).`
        : `Relabel ${label.annotator}'s ${label.label_class} label: choose the new class (1–4), give a reason, Enter saves.`),
      buttons, reason, h('div', { className: 'relabel-actions' }, save, cancel), error);
    reason.addEventListener('input', () => {
      this.draftReason = reason.value;
      updateSave();
    });
    submitOnEnter(reason, form, () => this.cancel());
    cancel.addEventListener('click', () => this.cancel());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.save(label, error);
    });
    updateSave();
    return form;
  }

  private cancel(): void {
    this.draftClass = null;
    this.draftReason = '';
    this.render(true);
    this.host.focusViewport();
  }

  private async save(label: Label, error: HTMLElement): Promise<void> {
    if (!this.draftClass) {
      error.textContent = 'Choose the new class first (1–4).';
      return;
    }
    if (!this.draftReason.trim()) {
      error.textContent = 'A reason is required: it is kept in the label\'s history.';
      return;
    }
    this.saving = true;
    this.render(true);
    try {
      const result = await api.relabel(label.id, this.draftClass, this.draftReason.trim());
      this.history.set(String(label.id), { version: result.label.version, revisions: result.history, error: '' });
      this.message = `Relabelled ${label.label_class} → ${result.label.label_class}.`;
      this.draftClass = null;
      this.draftReason = '';
      this.saving = false;
      this.host.relabelled(result.label);
      this.render(true);
      this.host.focusViewport();
    } catch (err) {
      this.saving = false;
      this.render(true);
      const text = err instanceof ApiError && err.status === 403 ? 'Only experts may relabel.' : (err as Error).message;
      const fresh = this.body.querySelector<HTMLElement>('[data-testid=relabel-error]');
      if (fresh) fresh.textContent = `Could not relabel: ${text}`;
    }
  }
}
