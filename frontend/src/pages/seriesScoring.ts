import { api } from '../api';
import { h, replaceChildren } from '../dom';
import { Poller } from '../poller';
import type { Job, JobSummary, Me, SeriesSummary } from '../types';
import { NOTHING_TO_SCORE } from '../verdict';

const POLL_MS = 3000;

export const canRescore = (me: Me): boolean => me.role === 'clinician' || me.role === 'expert' || me.role === 'admin';

/**
 * A series' scoring state on the study page: the job's status (with the error of a failed one), the model
 * that scored it, and a Re-score button (after a failure, or once a newer model is active). A queued or
 * running job is polled until it finishes; `onFinished` then lets the page refresh the study's verdict.
 */
export function seriesScoring(series: SeriesSummary, me: Me, onFinished: () => void): { element: HTMLElement; destroy: () => void } {
  const element = h('span', { className: 'series-scoring', 'data-testid': 'series-scoring' });
  const poller = new Poller(async () => {
    const job = (await api.series(series.series_uid)).job;
    if (poller.isStopped) return false;
    series = { ...series, job };
    render(job); // waits again while the job does
    if (job && (job.status === 'done' || job.status === 'failed')) onFinished();
    return false;
  }, POLL_MS);

  function render(job: JobSummary | Job | null, note = ''): void {
    const full = job && 'model_version' in job ? job : null;
    const status = job ? h('span', { className: `badge status-${job.status}`, 'data-testid': 'series-job-status', 'data-job-id': String(job.id), title: full?.error ?? '' }, `scoring ${job.status}`) : null;
    const version = full?.status === 'done' ? full.model_version : null;
    // Scores of a retired model stay as they were; a re-score uses the active one.
    const stale = version?.status === 'retired';
    const model = version ? h('span', { className: stale ? 'small warn-text' : 'muted small', 'data-testid': 'series-model' },
      ` model ${version.name}${stale ? ' (retired: re-score to use the active model)' : ''}`) : null;
    const nothing = full && full.status === 'done' && full.scored_locations === 0
      ? h('span', { className: 'badge verdict-none', title: NOTHING_TO_SCORE, 'data-testid': 'series-nothing-to-score' }, 'no lung tissue: no verdict') : null;
    const idle = !job || job.status === 'done' || job.status === 'failed';
    poller.pause();
    if (!job && series.not_scored_reason) {
      replaceChildren(element, h('span', { className: 'muted small', 'data-testid': 'series-not-scored' }, series.not_scored_reason));
      return;
    }
    // A job on the bulk queue (re-scores after a new model) may wait long; a re-score moves it forward.
    const waitsInBulk = full?.status === 'queued' && full.bulk === true;
    const bulkNote = waitsInBulk ? h('span', { className: 'muted small', 'data-testid': 'series-bulk-note' }, 'behind the re-scores of other series') : null;
    const button = canRescore(me) && (idle || waitsInBulk)
      ? h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'series-rescore', title: waitsInBulk ? 'Score this series before the other re-scores' : 'Score this series again with the current model' }, waitsInBulk ? 'Score now' : 'Re-score')
      : null;
    button?.addEventListener('click', () => void rescore(button));
    replaceChildren(element, status, ' ', model, ' ', nothing, ' ', bulkNote, ' ', button, note ? h('span', { className: 'error-text small' }, ` ${note}`) : null);
    if (job && !idle) poller.schedule();
  }

  async function rescore(button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const job = await api.rescoreSeries(series.series_uid);
      series = { ...series, job };
      render(job);
      if (job.status === 'done' || job.status === 'failed') onFinished(); // a worker may have been quick
    } catch (error) {
      render(series.job, `Could not re-score: ${(error as Error).message}`);
    }
  }

  render(series.job);
  return { element, destroy: () => poller.stop() };
}
