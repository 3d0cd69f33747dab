import { api } from '../api';
import { formatDateTime, h, replaceChildren } from '../dom';
import { Poller } from '../poller';
import type { Page } from '../router';
import type { Me, ModelVersionRecord, RetrainRun, SingleImageModel } from '../types';

const RUN_POLL_MS = 5000;
const METRICS: [key: string, label: string][] = [['macro_roc_auc', 'Macro ROC AUC'], ['accuracy', 'Accuracy'], ['macro_f1', 'Macro F1']];

function metric(version: ModelVersionRecord, key: string): string {
  const value = version.metrics[key];
  return typeof value === 'number' ? value.toFixed(3) : '—';
}

function heldoutNote(version: ModelVersionRecord): string {
  const heldout = version.metrics.heldout as { n?: number; z?: number[] } | undefined;
  if (heldout?.n) return `${heldout.n} held-out patches${heldout.z ? `, slices ${heldout.z[0]}–${(heldout.z[1] ?? 0) - 1}` : ''}`;
  // The gate measures the active model on its held-out set at the first retraining.
  return Object.keys(version.metrics).length === 0 ? 'not measured by the promotion gate yet' : '';
}

function runOutcome(run: RetrainRun): string {
  if (run.error) return run.error;
  if (run.metrics.reason) return run.metrics.reason;
  return run.status === 'queued' || run.status === 'running' ? 'in progress' : '';
}

const PATH_LABELS: Record<string, string> = { dicom: 'DICOM slice', lung_png: 'PNG/JPEG (lung window)' };

/** What scores claim images: a separate single-slice model (or the series model), with its thresholds. */
function claimModelPanel(info: SingleImageModel): HTMLElement {
  const thresholds = Object.entries(info.thresholds).map(([path, value]) =>
    h('li', {}, `${PATH_LABELS[path] ?? path}: flagged at tamper probability ${(value * 100).toFixed(2)} %`));
  const inputs = info.channels?.map(([window, dz]) => `${window} window, ${dz === 0 ? 'the slice itself' : `slice ${dz > 0 ? '+' : ''}${dz}`}`).join('; ');
  const metrics = info.metrics && typeof info.metrics.accuracy === 'number'
    ? `Validation (${info.metrics.n ?? '?'} simulated patches${info.validation_z ? `, slices ${info.validation_z[0]}–${(info.validation_z[1] ?? 0) - 1}` : ''}): accuracy ${info.metrics.accuracy.toFixed(3)}, macro ROC AUC ${(info.metrics.macro_roc_auc ?? 0).toFixed(3)}.`
    : null;
  return h('section', { className: 'panel', 'data-testid': 'claim-model' },
    h('h2', {}, 'Claim images'),
    h('p', {}, info.in_use
      ? 'Insurers\' claim images are single slices. They are scored by a separate single-image model, which retraining from labels does not change: '
      : 'Claim images are scored by the active series model with its single-image thresholds: ',
    h('span', { className: 'uid', 'data-testid': 'claim-model-name' }, info.model)),
    inputs ? h('p', { className: 'small' }, `Input: ${inputs}.`) : null,
    thresholds.length ? h('ul', { className: 'small', 'data-testid': 'claim-model-thresholds' }, ...thresholds)
      : h('p', { className: 'small error-text' }, 'No single-image threshold is calibrated: its scores do not set a claim\'s status.'),
    metrics ? h('p', { className: 'muted small' }, metrics) : null);
}

/** Detector versions with their held-out metrics, retraining runs and the promotion gate's decisions;
 * admins start retraining and roll back to an earlier promoted version. */
export function mountModelsPage(container: HTMLElement, me: Me): Page {
  const isAdmin = me.role === 'admin';
  const message = h('div', { 'aria-live': 'polite', 'data-testid': 'models-message' });
  const versions = h('tbody', {});
  const runs = h('tbody', {});
  const claimModel = h('div', {});
  const stale = h('div', { 'data-testid': 'stale-series' });
  const noBulkWorker = h('div');
  const start = h('button', { type: 'button', className: 'btn btn-primary', 'data-testid': 'retrain-start' }, 'Start retraining');
  const poller = new Poller(async () => {
    await reload();
    return false; // reload plans the next one while a retraining runs
  }, RUN_POLL_MS);

  const showError = (what: string, error: unknown): void =>
    replaceChildren(message, h('p', { className: 'error-text', role: 'alert' }, `${what}: ${(error as Error).message}`));

  function versionRow(version: ModelVersionRecord): HTMLElement {
    const actions = h('td', {});
    if (isAdmin && version.status === 'retired' && version.promoted_at && version.trained) {
      const rollback = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'model-rollback' }, 'Make active again');
      rollback.addEventListener('click', async () => {
        rollback.disabled = true;
        try {
          const active = await api.rollbackModel(version.id);
          replaceChildren(message, h('p', { className: 'small' }, `${active.name} is the active model again; new uploads are scored with it.`));
          await reload();
        } catch (error) {
          rollback.disabled = false;
          showError('Could not roll back', error);
        }
      });
      actions.append(rollback);
    }
    return h('tr', { 'data-testid': 'model-row', 'data-model-id': String(version.id), 'data-status': version.status },
      h('td', {}, h('div', { className: 'uid' }, version.name), version.parent ? h('div', { className: 'muted small' }, `from ${version.parent}`) : null),
      h('td', {}, h('span', { className: `badge model-${version.status}` }, version.status), version.trained ? null : h('div', { className: 'muted small' }, 'untrained')),
      ...METRICS.map(([key]) => h('td', { className: 'num' }, metric(version, key))),
      h('td', { className: 'small' }, heldoutNote(version)),
      h('td', { className: 'small' }, formatDateTime(version.created), version.promoted_at ? h('div', { className: 'muted' }, `promoted ${formatDateTime(version.promoted_at)}`) : null),
      actions);
  }

  function runRow(run: RetrainRun): HTMLElement {
    return h('tr', { 'data-testid': 'retrain-row', 'data-status': run.status },
      h('td', { className: 'small' }, formatDateTime(run.created)),
      h('td', {}, run.trigger),
      h('td', { className: 'num' }, String(run.n_labels)),
      h('td', {}, h('span', { className: `badge run-${run.status}` }, run.status)),
      h('td', { className: 'small' }, run.base_version ?? '—', run.candidate_version ? ` → ${run.candidate_version}` : ''),
      h('td', { className: 'small', 'data-testid': 'retrain-outcome' }, runOutcome(run)));
  }

  async function reload(): Promise<void> {
    poller.pause();
    try {
      const [models, retrains, single, outdated] = await Promise.all([api.models(), api.retrainRuns(), api.singleImageModel(), api.staleSeries()]);
      if (poller.isStopped) return;
      replaceChildren(stale, staleNote(outdated.model, outdated.stale_series));
      replaceChildren(claimModel, claimModelPanel(single));
      replaceChildren(versions, models.results.map(versionRow));
      replaceChildren(runs, retrains.results.length === 0
        ? h('tr', {}, h('td', { colSpan: 6, className: 'muted small', 'data-testid': 'retrain-none' }, 'No retraining yet.'))
        : retrains.results.map(runRow));
      const busy = retrains.results.some((r) => r.status === 'queued' || r.status === 'running');
      start.disabled = busy;
      if (busy) poller.schedule();
      const waiting = retrains.results.some((r) => r.status === 'queued') && (await api.scoringWorkers(true)) === 0;
      replaceChildren(noBulkWorker, waiting && !poller.isStopped
        ? h('p', { className: 'small error-text', 'data-testid': 'no-bulk-worker' }, 'No bulk worker is running: retraining starts when one does (celery -A portal worker -Q celery.bulk).')
        : null);
    } catch (error) {
      showError('Could not load models', error);
    }
  }

  /** Series whose latest scores are an older model's: a promotion re-scores only the review queue's. */
  function staleNote(model: string, count: number): HTMLElement | null {
    if (count === 0) return null;
    const rescore = isAdmin ? h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'rescore-stale' }, 'Re-score them') : null;
    rescore?.addEventListener('click', async () => {
      rescore.disabled = true;
      try {
        const { queued, already_pending: pending, not_scored: notScored } = await api.rescoreStaleSeries();
        replaceChildren(message, h('p', { className: 'small', 'data-testid': 'rescore-stale-result' },
          `${queued} series queued for re-scoring with ${model} on the bulk queue`
          + `${pending ? `; ${pending} already being scored` : ''}`
          + `${notScored ? `; ${notScored} no longer scored (not CT)` : ''}.`));
      } catch (error) {
        rescore.disabled = false;
        showError('Could not re-score', error);
      }
    });
    return h('p', { className: 'small warn-text' },
      `${count === 1 ? '1 series was' : `${count} series were`} last scored by another model than ${model}. `, rescore);
  }

  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      await api.startRetrain();
      replaceChildren(message, h('p', { className: 'small' }, 'Retraining queued: a worker fine-tunes the active model on the current labels, evaluates both on the held-out set and promotes the new one only if it is not worse.'));
      await reload();
    } catch (error) {
      start.disabled = false;
      showError('Could not start retraining', error);
    }
  });

  container.append(
    h('section', { className: 'page models-page', 'data-testid': 'models-page' },
      h('h1', {}, 'Models'),
      h('p', { className: 'muted' },
        'Every detector version. Scores always name the version that produced them. A retrained model replaces the active one only when the promotion gate measures it not worse on the fixed held-out set.'),
      message,
      h('section', { className: 'panel' },
        h('h2', {}, 'Versions'),
        stale,
        h('table', { className: 'table', 'data-testid': 'model-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Status'),
            ...METRICS.map(([, label]) => h('th', { className: 'num' }, label)), h('th', {}, 'Measured on'), h('th', {}, 'Created'), h('th', {}, h('span', { className: 'visually-hidden' }, 'Actions')))),
          versions)),
      h('section', { className: 'panel' },
        h('h2', {}, 'Retraining'),
        isAdmin ? h('p', {}, start) : h('p', { className: 'muted small' }, 'Admins start retraining; it also starts by itself when enough new labels arrive.'),
        noBulkWorker,
        h('table', { className: 'table', 'data-testid': 'retrain-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Requested'), h('th', {}, 'Trigger'), h('th', { className: 'num' }, 'Labels'),
            h('th', {}, 'Status'), h('th', {}, 'Base → candidate'), h('th', {}, 'Outcome'))),
          runs)),
      claimModel),
  );
  void reload();
  return {
    destroy: () => poller.stop(),
  };
}
