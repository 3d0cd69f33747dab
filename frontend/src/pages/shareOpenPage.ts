import { api, ApiError } from '../api';
import { formatBytes, formatDateTime, h, replaceChildren, saveBlob } from '../dom';
import type { Page } from '../router';
import type { ShareCheck } from '../types';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** The share id from a pasted link (…/shares/open/<id>) or a bare id. */
export function shareIdFrom(text: string): string | null {
  return UUID.exec(text.trim())?.[0]?.toLowerCase() ?? null;
}

function failure(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 410) return `${error.message}. Ask the sender for a new share.`;
    if (error.status === 404) return 'There is no share with this id.';
    if (error.status === 400 && /wrong key/i.test(error.message)) return 'This key does not open this share. Check that you copied all of it.';
  }
  return (error as Error).message;
}

function renderCheck(check: ShareCheck): HTMLElement {
  const dicom = check.files.filter((name) => name.endsWith('.dcm')).length;
  return h('div', { className: 'share-check', 'data-testid': 'share-check', 'data-ok': String(check.ok) },
    check.ok
      ? h('p', { className: 'banner banner-ok', 'data-testid': 'share-check-summary' },
        `Decrypted and verified: ${check.files.length} files, all matching the manifest; `,
        `${check.ledger_verified} of ${dicom} images match the portal's signed provenance ledger.`)
      : h('div', { className: 'banner banner-error', 'data-testid': 'share-check-summary' },
        h('strong', {}, 'Decrypted, but some files do not check out:'),
        h('ul', {}, check.problems.map((p) => h('li', {}, p)))),
    h('dl', { className: 'study-facts' },
      h('dt', {}, 'Content'), h('dd', {}, `${check.header.kind ?? 'share'} ${check.header.subject ?? ''}`),
      check.share ? [
        h('dt', {}, 'Shared by'), h('dd', {}, check.share.created_by ?? '—'),
        h('dt', {}, 'Created'), h('dd', {}, formatDateTime(check.share.created)),
        h('dt', {}, 'Archive size'), h('dd', {}, formatBytes(check.share.archive_size)),
      ] : null),
    h('details', {}, h('summary', {}, `Files (${check.files.length})`),
      h('ul', { className: 'file-names uid' }, check.files.map((name) => h('li', {}, name)))));
}

/** For whoever was handed a share: open (verify) or download it with the key, or check an archive file. */
export function mountShareOpenPage(container: HTMLElement, initialShareId: string): Page {
  const linkInput = h('input', { type: 'text', id: 'open-share-id', value: initialShareId, placeholder: 'Paste the link or the share id', spellcheck: 'false', autocomplete: 'off', 'data-testid': 'open-share-id' });
  const keyInput = h('input', { type: 'text', id: 'open-share-key', placeholder: 'Paste the key you were given', spellcheck: 'false', autocomplete: 'off', required: true, 'data-testid': 'open-share-key', className: 'key-input' });
  const openButton = h('button', { type: 'submit', className: 'btn btn-primary', 'data-testid': 'open-share-submit' }, 'Open');
  const downloadButton = h('button', { type: 'button', className: 'btn', 'data-testid': 'open-share-download', disabled: true }, 'Download files (.zip)');
  const result = h('div', { 'aria-live': 'polite', 'data-testid': 'open-share-result' });
  const form = h('form', { className: 'share-form', 'data-testid': 'open-share-form' },
    h('div', { className: 'field field-wide' }, h('label', { for: 'open-share-id' }, 'Share link or id'), linkInput),
    h('div', { className: 'field field-wide' }, h('label', { for: 'open-share-key' }, 'Key'), keyInput),
    h('div', { className: 'field field-actions' }, openButton, downloadButton));

  const archiveInput = h('input', { type: 'file', id: 'import-archive', accept: '.mitp,application/octet-stream', required: true, 'data-testid': 'import-archive' });
  const archiveKey = h('input', { type: 'text', id: 'import-key', placeholder: 'Key', spellcheck: 'false', autocomplete: 'off', required: true, 'data-testid': 'import-key', className: 'key-input' });
  const importButton = h('button', { type: 'submit', className: 'btn', 'data-testid': 'import-submit' }, 'Check archive');
  const importResult = h('div', { 'aria-live': 'polite', 'data-testid': 'import-result' });
  const importForm = h('form', { className: 'share-form', 'data-testid': 'import-form' },
    h('div', { className: 'field' }, h('label', { for: 'import-archive' }, 'Archive file (.mitp)'), archiveInput),
    h('div', { className: 'field field-wide' }, h('label', { for: 'import-key' }, 'Key'), archiveKey),
    h('div', { className: 'field field-actions' }, importButton));

  container.append(
    h('section', { className: 'page share-open-page', 'data-testid': 'share-open-page' },
      h('h1', {}, 'Open an encrypted share'),
      h('p', { className: 'muted' },
        'A clinician sent you a link to an encrypted study and, separately, its key. The portal decrypts it, checks every ',
        'file against the sealed manifest and every image against its signed provenance ledger.'),
      h('section', { className: 'panel' }, form, result),
      h('section', { className: 'panel' },
        h('h2', {}, 'Received the archive as a file?'),
        importForm, importResult)),
  );

  const current = (): { id: string; key: string } | null => {
    const id = shareIdFrom(linkInput.value);
    const key = keyInput.value.trim();
    if (!id) {
      replaceChildren(result, h('p', { className: 'error-text', role: 'alert' }, 'Paste the share link (or its id) you were given.'));
      return null;
    }
    return key ? { id, key } : null;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const share = current();
    if (!share) return;
    history.replaceState(null, '', `/shares/open/${share.id}`);  // the id, never the key, goes in the address
    openButton.disabled = true;
    downloadButton.disabled = true;
    replaceChildren(result, h('p', { className: 'muted' }, 'Decrypting and verifying…'));
    try {
      const check = await api.openShare(share.id, share.key);
      replaceChildren(result, renderCheck(check));
      downloadButton.disabled = false;
    } catch (error) {
      replaceChildren(result, h('p', { className: 'error-text', role: 'alert', 'data-testid': 'open-share-error' }, failure(error)));
    } finally {
      openButton.disabled = false;
    }
  });
  downloadButton.addEventListener('click', async () => {
    const share = current();
    if (!share) return;
    downloadButton.disabled = true;
    try {
      const { blob, filename } = await api.shareFiles(share.id, share.key);
      saveBlob(blob, filename);
    } catch (error) {
      replaceChildren(result, h('p', { className: 'error-text', role: 'alert', 'data-testid': 'open-share-error' }, failure(error)));
    } finally {
      downloadButton.disabled = false;
    }
  });
  // A changed link or key has not been verified yet.
  for (const input of [linkInput, keyInput]) input.addEventListener('input', () => (downloadButton.disabled = true));

  importForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = archiveInput.files?.[0];
    if (!file) return;
    importButton.disabled = true;
    replaceChildren(importResult, h('p', { className: 'muted' }, 'Decrypting and verifying…'));
    try {
      replaceChildren(importResult, renderCheck(await api.importShare(file, archiveKey.value.trim())));
    } catch (error) {
      replaceChildren(importResult, h('p', { className: 'error-text', role: 'alert', 'data-testid': 'import-error' }, failure(error)));
    } finally {
      importButton.disabled = false;
    }
  });

  (initialShareId ? keyInput : linkInput).focus();
  return {};
}
