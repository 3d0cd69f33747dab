import { api } from '../api';
import { copyText, h, replaceChildren } from '../dom';
import type { CreatedShare } from '../types';
import { createShareList } from './shareList';

export function shareOpenUrl(shareId: string): string {
  return `${location.origin}/shares/open/${encodeURIComponent(shareId)}`;
}

function copyField(label: string, value: string, testId: string): HTMLElement {
  const input = h('input', { type: 'text', readonly: true, value, spellcheck: 'false', 'aria-label': label, 'data-testid': testId, className: 'copy-input' });
  input.addEventListener('focus', () => input.select());
  const button = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': `${testId}-copy` }, 'Copy');
  button.addEventListener('click', async () => {
    button.textContent = (await copyText(value, input)) ? 'Copied' : 'Press Ctrl+C';
  });
  return h('div', { className: 'field' }, h('span', { className: 'field-label' }, label), h('div', { className: 'copy-row' }, input, button));
}

/** The key, shown once: the portal keeps only its SHA-256. */
function keyBox(share: CreatedShare, onDone: () => void): HTMLElement {
  const done = h('button', { type: 'button', className: 'btn btn-primary', 'data-testid': 'share-key-done' }, 'I have stored the key');
  done.addEventListener('click', onDone);
  return h('div', { className: 'banner banner-warn share-key-box', role: 'alert', 'data-testid': 'share-key-box' },
    h('strong', {}, 'Encrypted share created. Copy the key now: it is shown only this once.'),
    h('p', { className: 'small' },
      'Give the insurer the link and, by another channel (phone, letter, a separate message), the key. ',
      'With both they can open or download the study; the portal cannot show the key again.'),
    copyField('Key (AES-256)', share.key, 'share-key'),
    copyField('Link for the insurer', shareOpenUrl(share.id), 'share-link'),
    h('p', { className: 'small' },
      h('a', { href: share.archive_url, download: '', 'data-testid': 'share-key-archive' }, 'Download the encrypted archive'),
      ' to hand it over as a file instead.'),
    done);
}

/** A study page's "Encrypted shares" section: create one (key shown once), list and revoke them. */
export function createSharePanel(studyUid: string): HTMLElement {
  const list = createShareList({ studyUid });
  const recipient = h('input', { type: 'text', id: 'share-recipient', maxlength: '255', placeholder: 'e.g. ACME Insurance, claim 2026-113', 'data-testid': 'share-recipient' });
  const create = h('button', { type: 'submit', className: 'btn btn-primary', 'data-testid': 'share-create' }, 'Create encrypted share');
  const message = h('div', { 'aria-live': 'polite', 'data-testid': 'share-message' });
  const form = h('form', { className: 'share-form', 'data-testid': 'share-form' },
    h('div', { className: 'field field-wide' }, h('label', { for: 'share-recipient' }, 'Recipient (for your records)'), recipient),
    h('div', { className: 'field field-actions' }, create));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    create.disabled = true;
    replaceChildren(message, h('p', { className: 'muted small' }, 'Sealing the study (fetching its images from the archive)…'));
    try {
      const share = await api.createShare(studyUid, recipient.value.trim());
      recipient.value = '';
      form.hidden = true;
      replaceChildren(message, keyBox(share, () => {
        replaceChildren(message);
        form.hidden = false;
        create.focus();
      }));
      (message.querySelector('[data-testid=share-key]') as HTMLInputElement | null)?.focus();
      await list.reload();
    } catch (error) {
      replaceChildren(message, h('p', { className: 'error-text', role: 'alert' }, `Could not create the share: ${(error as Error).message}`));
    } finally {
      create.disabled = false;
    }
  });
  void list.reload();

  return h('section', { className: 'panel share-panel', 'aria-labelledby': 'share-title', 'data-testid': 'share-panel' },
    h('h2', { id: 'share-title' }, 'Encrypted shares'),
    h('p', { className: 'muted small' },
      'Seal this study (every indexed image, with a SHA-256 manifest) in an AES-256-GCM archive for an insurer. ',
      'You get a fresh key once; the insurer needs it to open the share.'),
    form,
    message,
    list.element);
}
