import { api } from '../api';
import { formatDateTime, h, replaceChildren } from '../dom';
import type { StudyDetail } from '../types';

const CONSEQUENCES = 'It disappears from every list, the viewer, the review queues and retraining, for everyone but admins. ' +
  'Nothing is deleted: its images stay in the PACS and its signed record in the ledger; an admin can restore it.';

/**
 * "Withdraw study" for its uploader and admins: a study uploaded in error (wrong patient, wrong exam) or
 * whose patient withdrew consent. Asks for the reason, which the audit log keeps.
 */
export function createWithdrawPanel(study: StudyDetail, onWithdrawn: (study: StudyDetail) => void): HTMLElement {
  const reason = h('textarea', { id: 'withdraw-reason', rows: 2, maxLength: 1000, 'aria-required': 'true', 'data-testid': 'withdraw-reason' });
  const confirm = h('button', { type: 'submit', className: 'btn btn-danger', 'data-testid': 'withdraw-confirm' }, 'Withdraw');
  const cancel = h('button', { type: 'button', className: 'btn' }, 'Cancel');
  const message = h('div', { 'aria-live': 'polite', 'data-testid': 'withdraw-message' });
  const form = h('form', { className: 'share-form', hidden: true, 'data-testid': 'withdraw-form' },
    h('div', { className: 'field field-wide' }, h('label', { for: 'withdraw-reason' }, 'Why (kept in the audit log; emailed to its uploader if that is not you)'), reason),
    h('div', { className: 'field field-actions' }, confirm, ' ', cancel));
  const open = h('button', { type: 'button', className: 'btn btn-danger', 'data-testid': 'withdraw-open' }, 'Withdraw study…');

  open.addEventListener('click', () => {
    form.hidden = false;
    open.hidden = true;
    reason.focus();
  });
  cancel.addEventListener('click', () => {
    form.hidden = true;
    open.hidden = false;
    replaceChildren(message);
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!reason.value.trim()) {
      replaceChildren(message, h('p', { className: 'error-text', role: 'alert' }, 'Say why the study is withdrawn.'));
      return;
    }
    confirm.disabled = true;
    try {
      onWithdrawn(await api.withdrawStudy(study.study_uid, reason.value));
    } catch (error) {
      confirm.disabled = false;
      replaceChildren(message, h('p', { className: 'error-text', role: 'alert' }, `Could not withdraw: ${(error as Error).message}`));
    }
  });

  return h('section', { className: 'panel', 'aria-labelledby': 'withdraw-title', 'data-testid': 'withdraw-panel' },
    h('h2', { id: 'withdraw-title' }, 'Withdraw'),
    h('p', { className: 'muted small' }, 'Uploaded in error, or the patient withdrew consent? ', CONSEQUENCES),
    open, form, message);
}

/** What a withdrawn study's page says: when, by whom and why; admins restore it here. */
export function withdrawnBanner(study: StudyDetail, canRestore: boolean, onRestored: () => void): HTMLElement {
  const withdrawn = study.withdrawn!;
  const message = h('div', { 'aria-live': 'polite' });
  let restore: HTMLButtonElement | null = null;
  if (canRestore) {
    restore = h('button', { type: 'button', className: 'btn btn-primary', 'data-testid': 'restore-study' }, 'Restore study');
    restore.addEventListener('click', async () => {
      restore!.disabled = true;
      try {
        await api.restoreStudy(study.study_uid);
        onRestored();
      } catch (error) {
        restore!.disabled = false;
        replaceChildren(message, h('p', { className: 'error-text', role: 'alert' }, `Could not restore: ${(error as Error).message}`));
      }
    });
  }
  return h('div', { className: 'banner banner-warn', role: 'status', 'data-testid': 'withdrawn-banner' },
    h('strong', {}, 'Withdrawn'),
    ` on ${formatDateTime(withdrawn.at)}${withdrawn.by ? ` by ${withdrawn.by}` : ''}: ${withdrawn.reason}\n`,
    'Hidden from everyone but admins; its images are still in the PACS. ', restore, message);
}
