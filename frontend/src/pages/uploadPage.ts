import { viewerPath } from '../api';
import { h, replaceChildren } from '../dom';
import { holdIdleLogoff } from '../idleLogoff';
import type { Page } from '../router';
import type { CopyMoveCheck, Job, JobStatus, JobSummary, Me, UploadError, UploadStored } from '../types';
import { fromDataTransfer, fromFileList, type PickedFile } from '../upload/collectFiles';
import { JobTracker } from '../upload/jobTracker';
import { createUploadHistory } from '../upload/uploadHistory';
import { uploadAll, type ChunkOutcome } from '../upload/uploader';
import { verdictBadge } from '../verdict';
import { copyMoveNote } from './copyMoveNote';

type FileState = 'waiting' | 'uploading' | 'storing' | 'stored' | 'error' | 'kept';

interface FileRow {
  picked: PickedFile;
  sent: number;
  state: FileState;
  message: string;
  bar: HTMLProgressElement;
  status: HTMLElement;
  row: HTMLElement;
}

const STATE_TEXT: Record<FileState, string> = {
  waiting: 'Waiting',
  uploading: 'Uploading',
  storing: 'Sent, storing…',
  stored: 'Stored',
  error: 'Rejected',
  kept: 'Kept on server',
};

const STATUS_RANK: Record<JobStatus, number> = { failed: 0, queued: 1, running: 2, done: 3 };
const QUEUED_CHECK: CopyMoveCheck = { status: 'queued', error: '', images_checked: 0, found: [] };

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function isZip(name: string): boolean {
  return name.toLowerCase().endsWith('.zip');
}

export function mountUploadPage(container: HTMLElement, me: Me): Page {
  let rows: FileRow[] = [];
  let uploading = false;
  const seriesStudy = new Map<string, string>();

  // Out of the tab order: the two buttons open them.
  const fileInput = h('input', { type: 'file', multiple: true, className: 'visually-hidden', id: 'file-input', tabindex: '-1', 'aria-label': 'DICOM files or zip archives', 'data-testid': 'file-input' });
  const folderInput = h('input', { type: 'file', multiple: true, webkitdirectory: true, className: 'visually-hidden', id: 'folder-input', tabindex: '-1', 'aria-label': 'A folder of DICOM files', 'data-testid': 'folder-input' });
  const chooseFiles = h('button', { type: 'button', className: 'btn', 'data-testid': 'choose-files' }, 'Choose files…');
  const chooseFolder = h('button', { type: 'button', className: 'btn', 'data-testid': 'choose-folder' }, 'Choose folder…');
  chooseFiles.addEventListener('click', () => fileInput.click());
  chooseFolder.addEventListener('click', () => folderInput.click());
  const dropZone = h(
    'div',
    // A region, not a button: it holds the two choose buttons (controls must not nest).
    { className: 'drop-zone', 'data-testid': 'drop-zone', role: 'region', 'aria-label': 'Drop DICOM files, folders or zip archives here' },
    h('p', { className: 'drop-title' }, 'Drop DICOM files, folders or .zip archives here'),
    h('p', {}, chooseFiles, ' ', chooseFolder),
    fileInput,
    folderInput,
  );
  const startButton = h('button', { type: 'button', className: 'btn btn-primary', disabled: true, 'data-testid': 'upload-start' }, 'Upload');
  const clearButton = h('button', { type: 'button', className: 'btn', disabled: true, 'data-testid': 'upload-clear' }, 'Clear');
  const summary = h('span', { className: 'muted', 'data-testid': 'upload-summary' }, 'No files selected.');
  const totalBar = h('progress', { max: '100', value: '0', className: 'progress-total', 'data-testid': 'upload-total-bar', 'aria-label': 'Total upload progress' });
  const totalText = h('span', { className: 'progress-text', 'data-testid': 'upload-total-progress', 'aria-live': 'polite' }, '0%');
  const banner = h('div', { className: 'banner-slot', 'data-testid': 'upload-banner', 'aria-live': 'polite' });
  const fileList = h('tbody', {});
  const fileTable = h(
    'div',
    { className: 'file-list', 'data-testid': 'upload-file-list' },
    h('table', { className: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'File'), h('th', { className: 'num' }, 'Size'), h('th', { className: 'col-progress' }, 'Progress'), h('th', {}, 'Status'))),
      fileList),
  );
  const jobList = h('ul', { className: 'job-list', 'data-testid': 'job-list' }, h('li', { className: 'muted' }, 'Scoring starts once files are stored.'));

  const history = createUploadHistory(me);
  container.append(
    h('section', { className: 'page upload-page' },
      h('h1', {}, 'Upload'),
      dropZone,
      h('div', { className: 'toolbar' }, startButton, clearButton, summary),
      h('div', { className: 'progress-row' }, h('span', {}, 'Total'), totalBar, totalText),
      banner,
      h('div', { className: 'upload-columns' },
        h('div', {}, h('h2', {}, 'Files'), fileTable),
        h('div', {}, h('h2', {}, 'Scoring'), jobList)),
      history.element),
  );

  const tracker = new JobTracker(renderJobs);
  let trackedJobs: (JobSummary | Job)[] = [];
  // Series stored but not scored (another modality than CT): listed with the reason, so nobody waits for them.
  const notScored = new Map<string, { study_uid: string; reason: string; copy_move_check: boolean }>();
  // A radiograph's copy-move check, followed until it finishes (one per series across re-renders).
  const copyMoveNotes = new Map<string, ReturnType<typeof copyMoveNote>>();
  const copyMoveNoteOf = (seriesUid: string, studyUid: string): HTMLElement => {
    let note = copyMoveNotes.get(seriesUid);
    if (!note) {
      note = copyMoveNote(studyUid, { series_uid: seriesUid, copy_move: QUEUED_CHECK });
      copyMoveNotes.set(seriesUid, note);
    }
    return note.element;
  };

  function renderJobs(jobs: (JobSummary | Job)[]): void {
    trackedJobs = jobs;
    if (jobs.length === 0 && notScored.size === 0) return;
    // Several upload requests can report the same series: show its most advanced job.
    const bySeries = new Map<string, JobSummary | Job>();
    for (const job of jobs) {
      const shown = bySeries.get(job.series_uid);
      if (!shown || STATUS_RANK[job.status] >= STATUS_RANK[shown.status]) bySeries.set(job.series_uid, job);
    }
    const unscored = [...notScored].map(([seriesUid, { study_uid: studyUid, reason, copy_move_check: checked }]) =>
      h('li', { className: 'job', 'data-testid': 'job-not-scored' },
        h('span', { className: 'badge verdict-none' }, 'not scored'),
        h('span', { className: 'uid', title: seriesUid }, `Series …${seriesUid.slice(-12)}`),
        h('span', { className: 'muted small' }, reason),
        h('a', { href: viewerPath(studyUid, seriesUid) }, 'Open viewer'),
        checked ? copyMoveNoteOf(seriesUid, studyUid) : null));
    replaceChildren(
      jobList,
      ...unscored,
      ...[...bySeries.values()].map((job) => {
        const studyUid = ('study_uid' in job && job.study_uid) || seriesStudy.get(job.series_uid);
        const error = 'error' in job && job.error ? job.error : null;
        // The outcome as soon as the worker has it, so the uploader need not open the study to learn it.
        const verdict = job.status === 'done' && 'verdict' in job
          ? verdictBadge(job.verdict || null, job.verdict_score ?? null, 'job-verdict', job.scored_locations === 0) : null;
        return h('li', { className: 'job', 'data-testid': 'job', 'data-status': job.status },
          h('span', { className: `badge status-${job.status}`, 'data-testid': 'job-status' }, job.status),
          h('span', { className: 'uid', title: job.series_uid }, `Series …${job.series_uid.slice(-12)}`),
          verdict,
          error ? h('span', { className: 'error-text' }, error) : null,
          studyUid ? h('a', { href: viewerPath(studyUid, job.series_uid), 'data-testid': 'job-open-viewer' }, 'Open viewer') : null);
      }),
    );
  }

  function setFiles(picked: PickedFile[]): void {
    if (uploading) return;
    rows = picked.map((p) => {
      const bar = h('progress', { max: String(Math.max(1, p.file.size)), value: '0', 'aria-label': `Progress of ${p.path}` });
      const status = h('span', { className: 'file-status', 'data-testid': 'file-status' }, STATE_TEXT.waiting);
      const row = h('tr', { 'data-testid': 'file-row', 'data-state': 'waiting' },
        h('td', { className: 'file-name', title: p.path }, p.path),
        h('td', { className: 'num' }, formatBytes(p.file.size)),
        h('td', { className: 'col-progress' }, bar),
        h('td', {}, status));
      return { picked: p, sent: 0, state: 'waiting' as FileState, message: '', bar, status, row };
    });
    replaceChildren(fileList, rows.map((r) => r.row));
    if (rows.length === 0) replaceChildren(fileList, h('tr', {}, h('td', { colspan: '4', className: 'muted' }, 'No usable files were found.')));
    const bytes = rows.reduce((sum, r) => sum + r.picked.file.size, 0);
    summary.textContent = rows.length ? `${rows.length} file(s), ${formatBytes(bytes)}` : 'No files selected.';
    startButton.disabled = rows.length === 0;
    clearButton.disabled = rows.length === 0;
    replaceChildren(banner);
    updateTotal();
  }

  function setState(row: FileRow, state: FileState, message = ''): void {
    row.state = state;
    row.message = message;
    row.row.dataset.state = state;
    row.status.textContent = message ? `${STATE_TEXT[state]}: ${message}` : STATE_TEXT[state];
    row.status.className = `file-status state-${state}`;
  }

  function updateTotal(): void {
    const total = rows.reduce((sum, r) => sum + r.picked.file.size, 0);
    const sent = rows.reduce((sum, r) => sum + r.sent, 0);
    const percent = total ? Math.floor((sent / total) * 100) : 0;
    totalBar.value = percent;
    totalText.textContent = `${percent}%`;
  }

  function showBanner(kind: 'ok' | 'warn' | 'error', text: string, testId: string): void {
    banner.append(h('div', { className: `banner banner-${kind}`, role: kind === 'ok' ? 'status' : 'alert', 'data-testid': testId }, text));
  }

  function applyResult(indexes: number[], stored: UploadStored[], errors: UploadError[]): void {
    const chunkRows = indexes.map((i) => rows[i]!);
    const unmatched = [...errors];
    for (const row of chunkRows) {
      const name = row.picked.file.name;
      const mine = errors.filter((e) => e.file === name || e.file.startsWith(`${name}/`) || e.file === row.picked.path);
      mine.forEach((e) => unmatched.splice(unmatched.indexOf(e), 1));
      const storedHere = stored.filter((s) => s.file === name || s.file.startsWith(`${name}/`));
      if (isZip(name)) {
        const storedCount = storedHere.length || stored.filter((s) => !chunkRows.some((r) => r.picked.file.name === s.file)).length;
        const reasons = mine.map((e) => `${e.file}: ${e.reason}`).join('; ');
        if (storedCount === 0 && mine.length) setState(row, 'error', reasons);
        else setState(row, 'stored', `${storedCount} image(s)${reasons ? `; rejected ${reasons}` : ''}`);
      } else if (mine.length) {
        setState(row, 'error', mine.map((e) => e.reason).join('; '));
      } else {
        setState(row, 'stored');
      }
    }
    if (unmatched.length) {
      showBanner('error', unmatched.map((e) => `${e.file}: ${e.reason}`).join('\n'), 'upload-other-errors');
    }
    for (const s of stored) seriesStudy.set(s.series_uid, s.study_uid);
  }

  function onChunkDone(indexes: number[], outcome: ChunkOutcome): void {
    const chunkRows = indexes.map((i) => rows[i]!);
    switch (outcome.kind) {
      case 'ok':
        applyResult(indexes, outcome.response.stored ?? [], outcome.response.errors ?? []);
        for (const s of outcome.response.not_scored ?? []) notScored.set(s.series_uid, s);
        tracker.add(outcome.response.jobs ?? []);
        if (outcome.response.not_scored?.length) renderJobs(trackedJobs);
        break;
      case 'invalid':
        applyResult(indexes, [], outcome.response.errors ?? []);
        chunkRows.filter((r) => r.state === 'stored').forEach((r) => setState(r, 'error', outcome.detail));
        break;
      case 'pacsDown':
        chunkRows.forEach((r) => setState(r, 'kept', 'image archive unavailable, will be stored automatically'));
        if (!banner.querySelector('[data-testid="upload-pacs-down"]')) {
          showBanner('warn',
            `The image archive (PACS) is unavailable. Your files were received and kept on the server` +
              `${outcome.batch ? ` (batch ${outcome.batch})` : ''}; they will be stored and scored automatically when it is back. ` +
              `You do not need to upload them again.`,
            'upload-pacs-down');
        }
        break;
      case 'failed':
        chunkRows.forEach((r) => {
          r.sent = 0;
          setState(r, 'error', outcome.detail);
        });
        break;
    }
    updateTotal();
  }

  async function start(): Promise<void> {
    if (uploading || rows.length === 0) return;
    uploading = true;
    const releaseIdle = holdIdleLogoff(); // a long upload without a click must not be cut by the idle logoff
    startButton.disabled = true;
    clearButton.disabled = true;
    replaceChildren(banner);
    rows.forEach((r) => {
      r.sent = 0;
      setState(r, 'uploading');
    });
    await uploadAll(rows.map((r) => r.picked), {
      onFileProgress: (index, bytes) => {
        const row = rows[index]!;
        row.sent = bytes;
        row.bar.value = bytes;
        updateTotal();
      },
      onChunkSent: (indexes) => indexes.forEach((i) => setState(rows[i]!, 'storing')),
      onChunkDone,
    }).finally(releaseIdle);
    uploading = false;
    clearButton.disabled = false;
    const count = (state: FileState): number => rows.filter((r) => r.state === state).length;
    const doneText = `Upload finished: ${count('stored')} stored, ${count('error')} rejected${count('kept') ? `, ${count('kept')} kept for later` : ''}.`;
    showBanner(count('error') || count('kept') ? 'warn' : 'ok', doneText, 'upload-done');
    history.refresh();
  }

  const onDragOver = (event: DragEvent): void => {
    event.preventDefault();
    dropZone.classList.add('drag-over');
  };
  dropZone.addEventListener('dragover', onDragOver);
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('drag-over'));
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropZone.classList.remove('drag-over');
    if (event.dataTransfer) void fromDataTransfer(event.dataTransfer).then(setFiles);
  });
  fileInput.addEventListener('change', () => fileInput.files && setFiles(fromFileList(fileInput.files)));
  folderInput.addEventListener('change', () => folderInput.files && setFiles(fromFileList(folderInput.files)));
  startButton.addEventListener('click', () => void start());
  clearButton.addEventListener('click', () => setFiles([]));
  // Dropping outside the zone must not navigate away from the page.
  const preventNavigation = (event: DragEvent): void => event.preventDefault();
  window.addEventListener('dragover', preventNavigation);
  window.addEventListener('drop', preventNavigation);

  return {
    destroy() {
      tracker.stop();
      history.destroy();
      for (const note of copyMoveNotes.values()) note.destroy();
      window.removeEventListener('dragover', preventNavigation);
      window.removeEventListener('drop', preventNavigation);
    },
  };
}
