import { api } from '../api';
import { formatBytes, formatDateTime, h, replaceChildren } from '../dom';
import type { EncryptedShare } from '../types';

export interface ShareList {
  element: HTMLElement;
  reload: () => Promise<void>;
}

/** The sharer's encrypted shares (of one study, or all of them) with their state and a two-step revoke. */
export function createShareList(options: { studyUid?: string; showStudy?: boolean }): ShareList {
  const status = h('p', { className: 'muted small list-status', 'aria-live': 'polite', 'data-testid': 'share-list-status' }, 'Loading shares…');
  const body = h('tbody', {});
  const table = h('table', { className: 'table share-table', 'data-testid': 'share-list', hidden: true },
    h('thead', {}, h('tr', {},
      options.showStudy ? h('th', {}, 'Study') : null,
      h('th', {}, 'Created'), h('th', {}, 'Recipient'), h('th', { className: 'num' }, 'Size'), h('th', {}, 'State'), h('th', {}, h('span', { className: 'visually-hidden' }, 'Actions')))),
    body);
  const element = h('div', { className: 'share-list' }, status, table);

  function stateCell(share: EncryptedShare): HTMLElement {
    if (share.revoked_at) {
      return h('span', { className: 'badge share-revoked', 'data-testid': 'share-state' },
        `Revoked ${formatDateTime(share.revoked_at)}${share.revoked_by ? ` by ${share.revoked_by}` : ''}`);
    }
    return h('span', { className: 'badge share-active', 'data-testid': 'share-state' }, 'Active');
  }

  function actionsCell(share: EncryptedShare, row: HTMLTableRowElement): HTMLElement {
    const cell = h('td', { className: 'share-actions' });
    if (share.revoked_at) return cell;
    const download = h('a', { href: api.shareArchiveUrl(share.id), className: 'btn btn-small', download: '', 'data-testid': 'share-download', title: 'Encrypted archive (.mitp), to hand over as a file' }, 'Download archive');
    const revoke = h('button', { type: 'button', className: 'btn btn-small btn-danger', 'data-testid': 'share-revoke' }, 'Revoke…');
    revoke.addEventListener('click', () => {
      const confirm = h('button', { type: 'button', className: 'btn btn-small btn-danger', 'data-testid': 'share-revoke-confirm' }, 'Revoke share');
      const cancel = h('button', { type: 'button', className: 'btn btn-small' }, 'Cancel');
      const note = h('span', { className: 'small', role: 'alert' }, 'The key will no longer open it through the portal. ');
      replaceChildren(cell, note, confirm, ' ', cancel);
      confirm.focus();
      cancel.addEventListener('click', () => replaceChildren(cell, download, ' ', revoke));
      confirm.addEventListener('click', async () => {
        confirm.disabled = true;
        try {
          const revoked = await api.revokeShare(share.id);
          row.replaceWith(renderRow(revoked));
        } catch (error) {
          replaceChildren(cell, h('span', { className: 'error-text small' }, `Could not revoke: ${(error as Error).message}`), ' ', download, ' ', revoke);
        }
      });
    });
    replaceChildren(cell, download, ' ', revoke);
    return cell;
  }

  function renderRow(share: EncryptedShare): HTMLTableRowElement {
    const row = h('tr', { 'data-testid': 'share-row', 'data-share-id': share.id, 'data-revoked': String(Boolean(share.revoked_at)) });
    const studyUid = share.study_uid ?? share.header.subject ?? '';
    row.append(
      ...(options.showStudy ? [h('td', {}, share.kind === 'study' && studyUid
        ? h('a', { href: `/studies/${encodeURIComponent(studyUid)}`, className: 'uid', title: studyUid }, `…${studyUid.slice(-12)}`)
        : h('span', { className: 'muted' }, `${share.kind} ${share.header.subject ?? ''}`))] : []),
      h('td', { title: share.id }, formatDateTime(share.created)),
      h('td', {}, share.recipient || h('span', { className: 'muted' }, '—')),
      h('td', { className: 'num' }, formatBytes(share.archive_size)),
      h('td', {}, stateCell(share)),
      actionsCell(share, row),
    );
    return row;
  }

  async function reload(): Promise<void> {
    try {
      const shares = await api.shares(options.studyUid);
      replaceChildren(body, shares.map(renderRow));
      table.hidden = shares.length === 0;
      status.textContent = shares.length === 0 ? (options.studyUid ? 'No encrypted shares of this study yet.' : 'You have not shared any study yet.') : '';
    } catch (error) {
      status.textContent = `Could not load shares: ${(error as Error).message}`;
      status.className = 'error-text small list-status';
    }
  }

  return { element, reload };
}
