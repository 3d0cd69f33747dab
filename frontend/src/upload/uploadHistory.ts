import { api } from '../api';
import { countOf, formatDateTime, h, personName, replaceChildren } from '../dom';
import { Poller } from '../poller';
import type { Me, UploadBatch } from '../types';
import { studyVerdict } from '../verdict';

const POLL_MS = 10_000;

function statusBadge(batch: UploadBatch): HTMLElement {
  if (batch.status === 'staged') {
    return h('span', { className: 'badge status-running', title: batch.last_error || undefined },
      `waiting for the PACS (${countOf(batch.attempts, 'attempt')})`);
  }
  return batch.status === 'stored'
    ? h('span', { className: 'badge status-done' }, 'stored')
    : h('span', { className: 'badge status-failed' }, 'nothing stored');
}

function refused(batch: UploadBatch): HTMLElement | string {
  if (batch.errors.length === 0) return '0';
  return h('details', { 'data-testid': 'history-refused' },
    h('summary', {}, String(batch.errors.length)),
    h('ul', { className: 'small' }, batch.errors.map((e) => h('li', {}, h('strong', {}, e.file), `: ${e.reason}`))));
}

function studies(batch: UploadBatch): (HTMLElement | string)[] | string {
  if (batch.studies.length === 0) return '—';
  return batch.studies.map((s) => h('div', {},
    h('a', { href: `/studies/${encodeURIComponent(s.study_uid)}` }, personName(s.patient_name) || s.patient_id || s.study_uid),
    ' ', s.withdrawn ? h('span', { className: 'badge' }, 'withdrawn') : studyVerdict(s, 'history-verdict')));
}

/**
 * The upload page's history: each earlier upload request with what was stored, what was refused and why,
 * and its studies; an upload kept while the PACS was down shows when it has been stored since (polled).
 */
export function createUploadHistory(me: Me): { element: HTMLElement; refresh: () => void; destroy: () => void } {
  const admin = me.role === 'admin';
  const body = h('tbody', {});
  const status = h('p', { className: 'muted small', 'aria-live': 'polite' }, 'Loading…');
  const poller = new Poller(async () => {
    await refresh();
    return false; // refresh plans the next one while a batch waits
  }, POLL_MS);

  async function refresh(): Promise<void> {
    poller.pause();
    try {
      const batches = (await api.uploads()).results;
      if (poller.isStopped) return;
      status.textContent = batches.length ? '' : 'No uploads yet.';
      replaceChildren(body, batches.map((batch) => h('tr', { 'data-testid': 'history-row', 'data-status': batch.status },
        h('td', {}, formatDateTime(batch.created)),
        admin ? h('td', {}, batch.uploaded_by ?? '—') : null,
        h('td', { className: 'num' }, batch.files_received),
        h('td', { className: 'num' }, batch.instances_stored),
        h('td', { className: 'num' }, refused(batch)),
        h('td', {}, statusBadge(batch)),
        h('td', {}, studies(batch)))));
      if (batches.some((b) => b.status === 'staged')) poller.schedule();
    } catch (error) {
      if (!poller.isStopped) status.textContent = `Could not load the upload history: ${(error as Error).message}`;
    }
  }

  void refresh();
  const element = h('section', { className: 'panel', 'aria-labelledby': 'history-title', 'data-testid': 'upload-history' },
    h('h2', { id: 'history-title' }, admin ? 'Recent uploads' : 'Your uploads'),
    status,
    h('div', { className: 'table-wrap' },
      h('table', { className: 'table' },
        h('thead', {}, h('tr', {},
          h('th', {}, 'When'), admin ? h('th', {}, 'By') : null, h('th', { className: 'num' }, 'Files'),
          h('th', { className: 'num' }, 'Images stored'), h('th', { className: 'num' }, 'Refused'),
          h('th', {}, 'Status'), h('th', {}, 'Studies'))),
        body)));
  return {
    element,
    refresh: () => void refresh(),
    destroy: () => poller.stop(),
  };
}
