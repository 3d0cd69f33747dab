import { api } from '../api';
import { formatDateTime, h, replaceChildren } from '../dom';
import type { InsurerAccess, InsurerAccount } from '../types';

const accountLabel = (a: { username: string; name: string }): string => (a.name ? `${a.name} (${a.username})` : a.username);

/** A study page's "Insurer access": which insurer accounts may use this study in their claims; grant, revoke. */
export function createInsurerAccessPanel(studyUid: string): HTMLElement {
  const picker = h('select', { id: 'insurer-pick', 'data-testid': 'insurer-pick' });
  const grant = h('button', { type: 'submit', className: 'btn btn-primary', 'data-testid': 'insurer-grant' }, 'Share with insurer');
  const message = h('div', { 'aria-live': 'polite', 'data-testid': 'insurer-message' });
  const list = h('ul', { className: 'insurer-list', 'data-testid': 'insurer-list' });
  const form = h('form', { className: 'share-form', 'data-testid': 'insurer-form' },
    h('div', { className: 'field field-wide' }, h('label', { for: 'insurer-pick' }, 'Insurer account'), picker),
    h('div', { className: 'field field-actions' }, grant));
  let accounts: InsurerAccount[] = [];

  const showError = (what: string, error: unknown): void =>
    replaceChildren(message, h('p', { className: 'error-text', role: 'alert' }, `${what}: ${(error as Error).message}`));

  function render(access: InsurerAccess[]): void {
    const granted = new Set(access.map((a) => a.insurer));
    const open = accounts.filter((a) => !granted.has(a.username));
    replaceChildren(picker, open.length === 0
      ? h('option', { value: '' }, accounts.length === 0 ? 'No insurer accounts exist' : 'Every insurer already has access')
      : open.map((a) => h('option', { value: a.username }, accountLabel(a))));
    picker.disabled = grant.disabled = open.length === 0;
    replaceChildren(list, access.length === 0
      ? h('li', { className: 'muted small', 'data-testid': 'insurer-none' }, 'No insurer can see this study.')
      : access.map((a) => {
        const revoke = h('button', { type: 'button', className: 'btn btn-small btn-danger', 'data-testid': 'insurer-revoke' }, 'Revoke');
        revoke.addEventListener('click', async () => {
          revoke.disabled = true;
          try {
            await api.revokeInsurer(studyUid, a.insurer);
            replaceChildren(message);
            await reload();
          } catch (error) {
            revoke.disabled = false;
            showError('Could not revoke', error);
          }
        });
        return h('li', { 'data-testid': 'insurer-row', 'data-insurer': a.insurer },
          h('strong', {}, accountLabel({ username: a.insurer, name: a.name })),
          h('span', { className: 'muted small' }, ` since ${formatDateTime(a.created)}${a.granted_by ? ` (by ${a.granted_by})` : ''} `),
          revoke);
      }));
  }

  async function reload(): Promise<void> {
    try {
      const [all, access] = await Promise.all([api.insurers(), api.insurerAccess(studyUid)]);
      accounts = all;
      render(access);
    } catch (error) {
      showError('Could not load insurer access', error);
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!picker.value) return;
    grant.disabled = true;
    try {
      await api.grantInsurer(studyUid, picker.value);
      replaceChildren(message);
      await reload();
    } catch (error) {
      grant.disabled = false;
      showError('Could not share', error);
    }
  });
  void reload();

  return h('section', { className: 'panel insurer-panel', 'aria-labelledby': 'insurer-title', 'data-testid': 'insurer-panel' },
    h('h2', { id: 'insurer-title' }, 'Insurer access'),
    h('p', { className: 'muted small' },
      'An insurer you share with can reference this study in their claims: the portal then compares claim images ',
      'with its signed originals. Revoking stops new comparisons; finished claim reports are kept.'),
    form, message, list);
}
