import { api, viewerPath } from '../api';
import { countOf, formatPercent, h, replaceChildren } from '../dom';
import { navigate, type Page } from '../router';
import type { AdjudicationItem, AgreementReport, CopyMoveFinding, Me, QueueItem, QueueSummary } from '../types';
import { CLASS_COLOURS } from '../viewer/markerLayer';

export function queueItemPath(item: QueueItem): string {
  return viewerPath(item.study_uid, item.series_uid, {
    slice: item.slice_index,
    x: item.x === null ? null : Math.round(item.x),
    y: item.y === null ? null : Math.round(item.y),
    item: item.id,
  });
}

/** The viewer at a disputed item's location, in adjudication mode. */
export function adjudicationPath(item: QueueItem): string {
  return viewerPath(item.study_uid, item.series_uid, {
    slice: item.slice_index,
    x: item.x === null ? null : Math.round(item.x),
    y: item.y === null ? null : Math.round(item.y),
    adjudicate: item.id,
  });
}

/** Lease the next uncertain item and open the viewer on it; false when the queue is empty. */
export async function openNextQueueItem(): Promise<boolean> {
  const item = await api.nextQueueItem();
  if (!item) return false;
  navigate(queueItemPath(item));
  return true;
}

/** Open the highest-priority disputed item; false when none is waiting. */
export async function openNextAdjudication(): Promise<boolean> {
  const page = await api.adjudications();
  const item = page.results[0];
  if (!item) return false;
  navigate(adjudicationPath(item));
  return true;
}

export function canAdjudicate(me: Me): boolean {
  return me.role === 'expert' || me.role === 'admin';
}

export function labelChip(annotator: string, labelClass: keyof typeof CLASS_COLOURS, extra = ''): HTMLElement {
  return h('span', { className: 'label-chip', 'data-testid': 'label-chip', 'data-label-class': labelClass },
    h('span', { className: 'swatch', style: `background: ${CLASS_COLOURS[labelClass]}` }),
    `${annotator}: ${labelClass}${extra}`);
}

type QueueMode = 'review' | 'adjudication' | 'agreement' | 'copy-move';

function modeTabs(mode: QueueMode): HTMLElement {
  const tab = (id: QueueMode, href: string, text: string) =>
    h('a', { href, role: 'tab', className: `mode-tab${id === mode ? ' active' : ''}`, 'aria-selected': String(id === mode), 'data-testid': `queue-mode-${id}` }, text);
  const copyMoveTab = tab('copy-move', '/queue?mode=copy-move', 'Copy-move findings');
  // How many wait for a review, so that an expert sees it from any tab (the count is left out if unknown).
  void api.copyMoveFindings(false).then((page) => {
    if (page.count) copyMoveTab.textContent = `Copy-move findings (${page.count} to review)`;
  }, () => undefined);
  return h('nav', { className: 'mode-tabs', role: 'tablist', 'aria-label': 'Queue mode' },
    tab('review', '/queue', 'Uncertain items'),
    tab('adjudication', '/queue?mode=adjudication', 'Disputed items (adjudication)'),
    tab('agreement', '/queue?mode=agreement', 'Annotator agreement'),
    copyMoveTab);
}

function mountReviewMode(section: HTMLElement): void {
  const button = h('button', { type: 'button', className: 'btn btn-primary btn-large', 'data-testid': 'queue-next' }, 'Next uncertain item');
  const message = h('p', { className: 'queue-message', 'aria-live': 'polite', 'data-testid': 'queue-message' });
  const waiting = h('p', { className: 'small', 'data-testid': 'queue-waiting' });
  const held = h('div', { 'data-testid': 'queue-held-box' });
  const progress = h('div', { className: 'muted small queue-progress', 'data-testid': 'queue-summary' });
  section.append(
    h('p', { className: 'muted' }, 'Takes the item the model is least sure about, reserves it for you and opens it in the viewer at the slice and location to check.'),
    waiting,
    held,
    button,
    message,
    progress);

  async function showSummary(): Promise<void> {
    let summary: QueueSummary;
    try {
      summary = await api.queueSummary();
    } catch {
      return; // the button still works; the counts are a convenience
    }
    waiting.textContent = summary.available === 0 ? 'Nothing is waiting for you.' : `${countOf(summary.available, 'item')} waiting for you.`;
    replaceChildren(held, summary.held ? heldItem(summary.held) : null);
    const { every_n_labels: every, labels_since_last: since } = summary.retraining;
    replaceChildren(progress,
      h('p', {}, `${summary.held_by_others} in progress with other annotators · ${summary.awaiting_other_annotators} labelled by you, waiting for a second reader · ${summary.adjudication} disputed · ${summary.done} done.`),
      h('p', { 'data-testid': 'queue-retraining' }, `Your labels: ${summary.my_labels}. `
        + (every > 0 ? `Automatic retraining after ${countOf(Math.max(0, every - since), 'more label')} (${since} of ${every} since the last run).`
          : 'Retraining is started by an admin (no automatic trigger).')),
      myAgreement(summary.my_agreement));
  }

  function heldItem(item: QueueItem): HTMLElement {
    const release = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'queue-release' }, 'Release');
    release.addEventListener('click', async () => {
      release.disabled = true;
      try {
        await api.releaseQueueItem(item.id);
        await showSummary();
      } catch (error) {
        replaceChildren(message, h('span', { className: 'error-text' }, `Could not release the item: ${(error as Error).message}`));
        release.disabled = false;
      }
    });
    const until = item.lease_expires ? ` until ${new Date(item.lease_expires).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : '';
    return h('p', { className: 'queue-held', 'data-testid': 'queue-held' },
      `You hold slice ${item.slice_index + 1} of series …${item.series_uid.slice(-8)}${until}. `,
      h('a', { href: queueItemPath(item), className: 'btn btn-small btn-primary', 'data-testid': 'queue-resume' }, 'Resume'), ' ',
      release);
  }

  void showSummary();
  button.addEventListener('click', async () => {
    button.disabled = true;
    replaceChildren(message, 'Finding the next item…');
    try {
      if (!(await openNextQueueItem())) {
        message.dataset.testid = 'queue-empty';
        replaceChildren(message, 'The queue is empty: nothing is waiting for review.');
      }
    } catch (error) {
      replaceChildren(message, h('span', { className: 'error-text' }, `Could not get the next item: ${(error as Error).message}`));
    } finally {
      button.disabled = false;
    }
  });
}

function myAgreement({ decided, agreed_with_final: agreed }: QueueSummary['my_agreement']): HTMLElement | null {
  if (decided === 0) return null;
  return h('p', { 'data-testid': 'queue-my-agreement' },
    `On items read by two or more annotators, ${agreed} of your ${countOf(decided, 'decided label')} match the final answer (${formatPercent(agreed / decided)}).`);
}

/** Landis and Koch's words for a kappa, the scale most labelling guidelines quote. */
export function kappaWords(kappa: number | null): string {
  if (kappa === null) return 'undefined (one class throughout)';
  const words = kappa < 0 ? 'poor' : kappa <= 0.2 ? 'slight' : kappa <= 0.4 ? 'fair' : kappa <= 0.6 ? 'moderate' : kappa <= 0.8 ? 'substantial' : 'almost perfect';
  return `${kappa.toFixed(2)} (${words})`;
}

function mountAgreementMode(section: HTMLElement, query: URLSearchParams): void {
  const since = h('input', { type: 'date', id: 'agreement-since', value: query.get('since') ?? '', 'data-testid': 'agreement-since' });
  const status = h('p', { className: 'muted list-status', 'aria-live': 'polite', 'data-testid': 'agreement-status' }, 'Loading…');
  const body = h('div', { 'data-testid': 'agreement-report' });
  section.append(
    h('p', { className: 'muted' }, 'How often annotators who read the same review-queue item independently chose the same class, and how often each one matched the final answer (the consensus or an expert\'s adjudication). Kappa corrects agreement for chance: 1 is perfect, 0 is what chance gives.'),
    h('div', { className: 'filters' }, h('label', { htmlFor: 'agreement-since' }, 'Labels given since ', since)),
    status, body);
  since.addEventListener('change', () => {
    navigate(`/queue?mode=agreement${since.value ? `&since=${since.value}` : ''}`, { replace: true });
  });
  void (async () => {
    try {
      const report = await api.agreement(since.value);
      status.hidden = true;
      replaceChildren(body, ...agreementReport(report));
    } catch (error) {
      status.textContent = `Could not load the agreement figures: ${(error as Error).message}`;
      status.className = 'error-text list-status';
    }
  })();
}

const FEW_PAIRS = 20;

function agreementReport(report: AgreementReport): HTMLElement[] {
  const { overall, model } = report;
  if (overall.label_pairs === 0) {
    return [h('p', { 'data-testid': 'agreement-empty' }, 'No item has been read by two annotators yet. Build a queue that needs two labels per item (Rebuild queue in the viewer) to measure agreement.')];
  }
  const table = (testid: string, head: string[], rows: HTMLTableRowElement[]) =>
    h('table', { className: 'table agreement-table', 'data-testid': testid },
      h('thead', {}, h('tr', {}, head.map((text, i) => h('th', { className: i ? 'num' : '' }, text)))),
      h('tbody', {}, rows));
  const td = (value: string | number) => h('td', { className: 'num' }, value);
  return [
    h('p', { 'data-testid': 'agreement-overall' },
      `${countOf(overall.items_with_two_or_more_labels, 'item')} read by two or more annotators: ${formatPercent(overall.agreement)} of ${countOf(overall.label_pairs, 'label pair')} agree; kappa ${kappaWords(overall.kappa)}.`
      + (overall.label_pairs < FEW_PAIRS ? ` Fewer than ${FEW_PAIRS} pairs: each new label can move these figures a lot.` : '')),
    h('p', { 'data-testid': 'agreement-model' }, model.decided === 0 ? 'No decided item has the model\'s probabilities yet.'
      : `The model's most probable class matched the final answer on ${model.agreed_with_final} of ${countOf(model.decided, 'decided item')} (${formatPercent(model.agreement_with_final)}).`),
    h('h2', {}, 'Annotators'),
    table('agreement-annotators', ['Annotator', 'Labels', ...report.classes, 'Decided (read by 2+)', 'Matched final', 'Overruled by expert', 'Agreement with final'],
      report.annotators.map((row) => h('tr', { 'data-testid': 'agreement-annotator-row' },
        h('td', {}, row.annotator), td(row.labels), ...report.classes.map((c) => td(row.classes[c])),
        td(row.decided), td(row.agreed_with_final), td(row.overruled), td(formatPercent(row.agreement_with_final))))),
    h('h2', {}, 'Pairs of annotators'),
    table('agreement-pairs', ['Annotators', 'Items both read', 'Agreement', 'Kappa'],
      report.pairs.map((pair) => h('tr', { 'data-testid': 'agreement-pair-row' },
        h('td', {}, pair.annotators.join(' & ')), td(pair.items), td(formatPercent(pair.agreement)), td(kappaWords(pair.kappa))))),
    h('h2', {}, 'Which classes are confused'),
    h('p', { className: 'muted small' }, 'Each cell counts label pairs on the same item: one annotator chose the row\'s class, the other the column\'s. Off the diagonal is disagreement.'),
    table('agreement-confusion', ['One annotator ↓ / the other →', ...report.classes],
      report.confusion.map((row, i) => h('tr', {}, h('th', { scope: 'row' }, report.classes[i]),
        ...row.map((n, j) => h('td', { className: `num${i === j ? ' diagonal' : n > 0 ? ' off-diagonal' : ''}` }, n))))),
  ];
}

function mountAdjudicationMode(section: HTMLElement): void {
  const status = h('p', { className: 'muted list-status', 'aria-live': 'polite', 'data-testid': 'adjudication-status' }, 'Loading disputed items…');
  const first = h('button', { type: 'button', className: 'btn btn-primary btn-large', 'data-testid': 'adjudication-next', disabled: true }, 'Open first disputed item');
  const body = h('tbody', {});
  const table = h('table', { className: 'table', 'data-testid': 'adjudication-list', hidden: true },
    h('thead', {}, h('tr', {}, h('th', {}, 'Slice'), h('th', {}, 'Location'), h('th', {}, 'Labels that disagree'), h('th', {}, 'Series'), h('th', {}, h('span', { className: 'visually-hidden' }, 'Actions')))),
    body);
  section.append(
    h('p', { className: 'muted' }, 'Items where independent annotators chose different classes. Open one, compare the labels on the image and decide with a reason: your decision becomes the item\'s answer for retraining.'),
    first, status, table);
  first.addEventListener('click', () => {
    const item = body.querySelector<HTMLAnchorElement>('[data-testid=adjudication-open]');
    item?.click();
  });

  function renderRow(item: AdjudicationItem): HTMLTableRowElement {
    return h('tr', { 'data-testid': 'adjudication-row', 'data-item-id': String(item.id) },
      h('td', { className: 'num' }, item.slice_index + 1),
      h('td', { className: 'num' }, item.x === null ? '—' : `(${Math.round(item.x)}, ${Math.round(item.y ?? 0)})`),
      h('td', {}, h('div', { className: 'chips' }, item.labels.filter((l) => !l.is_adjudication).map((l) => labelChip(l.annotator, l.label_class)))),
      h('td', { className: 'uid', title: item.series_uid }, `…${item.series_uid.slice(-12)}`),
      h('td', {}, h('a', { href: adjudicationPath(item), className: 'btn btn-small', 'data-testid': 'adjudication-open' }, 'Adjudicate')));
  }

  void (async () => {
    try {
      const page = await api.adjudications();
      replaceChildren(body, page.results.map(renderRow));
      table.hidden = page.results.length === 0;
      first.disabled = page.results.length === 0;
      status.textContent = page.count === 0
        ? 'Nothing to adjudicate: no annotators disagree right now.'
        : `${countOf(page.count, 'disputed item')}${page.next ? `, showing the first ${page.results.length} by priority` : ''}.`;
    } catch (error) {
      status.textContent = `Could not load disputed items: ${(error as Error).message}`;
      status.className = 'error-text list-status';
    }
  })();
}

/** Experts: images in radiographs the copy-move check found a copy in, waiting for a review (or reviewed). */
function mountCopyMoveMode(section: HTMLElement, query: URLSearchParams): void {
  const shown = query.get('reviewed') === 'true' ? 'true' : query.get('reviewed') === 'all' ? 'all' : 'false';
  const status = h('p', { className: 'muted list-status', 'aria-live': 'polite', 'data-testid': 'copy-move-findings-status' }, 'Loading copy-move findings…');
  const body = h('tbody', {});
  const table = h('table', { className: 'table', 'data-testid': 'copy-move-findings', hidden: true },
    h('thead', {}, h('tr', {}, h('th', {}, 'Checked'), h('th', {}, 'Image'), h('th', {}, 'Copies'), h('th', {}, 'Review'), h('th', {}, 'Study'), h('th', {}, h('span', { className: 'visually-hidden' }, 'Actions')))),
    body);
  const choice = h('select', { 'aria-label': 'Which findings', 'data-testid': 'copy-move-findings-filter' },
    ([['false', 'Waiting for a review'], ['true', 'Reviewed'], ['all', 'All']] as const).map(([value, text]) =>
      h('option', { value, selected: value === shown }, text)));
  choice.addEventListener('change', () => navigate(`/queue?mode=copy-move&reviewed=${choice.value}`, { replace: true }));
  section.append(
    h('p', { className: 'muted' }, 'Radiographs in which the copy-move check found the same content at two places of an image. Open one, look at both boxed places, and confirm the copy or dismiss it with a reason (two ribs alike, say): a dismissed image no longer makes its study\'s verdict.'),
    h('div', { className: 'inline-field' }, choice), status, table);

  const row = (finding: CopyMoveFinding): HTMLTableRowElement => h('tr', { 'data-testid': 'copy-move-finding', 'data-review': finding.review?.decision ?? 'none' },
    h('td', {}, new Date(finding.checked).toLocaleString()),
    h('td', {}, `${finding.modality} image ${finding.slice_index + 1}`),
    h('td', { className: 'num' }, finding.regions.length),
    h('td', {}, finding.review ? `${finding.review.decision} by ${finding.review.by}` : h('span', { className: 'muted' }, 'waiting')),
    h('td', { className: 'uid', title: finding.study_uid }, h('a', { href: `/studies/${encodeURIComponent(finding.study_uid)}` }, `…${finding.study_uid.slice(-12)}`)),
    h('td', {}, h('a', { href: viewerPath(finding.study_uid, finding.series_uid, { slice: finding.slice_index }), className: 'btn btn-small', 'data-testid': 'copy-move-finding-open' }, 'Review')));

  void (async () => {
    try {
      const page = await api.copyMoveFindings(shown === 'all' ? null : shown === 'true');
      replaceChildren(body, page.results.map(row));
      table.hidden = page.results.length === 0;
      status.textContent = page.count === 0
        ? (shown === 'false' ? 'Nothing to review: every copy-move finding has an expert\'s review.' : 'No copy-move findings.')
        : `${countOf(page.count, 'image')}${page.next ? `, showing the ${page.results.length} longest waiting` : ''}.`;
    } catch (error) {
      status.textContent = `Could not load copy-move findings: ${(error as Error).message}`;
      status.className = 'error-text list-status';
    }
  })();
}

export function mountQueuePage(container: HTMLElement, me: Me, query: URLSearchParams): Page {
  const asked = query.get('mode');
  const expertModes: (string | null)[] = ['adjudication', 'agreement', 'copy-move'];
  const mode = (canAdjudicate(me) && expertModes.includes(asked) ? asked : 'review') as QueueMode;
  const titles: Record<QueueMode, string> = { review: 'Review queue', adjudication: 'Adjudication', agreement: 'Annotator agreement', 'copy-move': 'Copy-move findings' };
  const section = h('section', { className: 'page queue-page', 'data-testid': `queue-page-${mode}` },
    h('h1', {}, titles[mode]),
    canAdjudicate(me) ? modeTabs(mode) : null);
  container.append(section);
  if (mode === 'review') mountReviewMode(section);
  else if (mode === 'adjudication') mountAdjudicationMode(section);
  else if (mode === 'copy-move') mountCopyMoveMode(section, query);
  else mountAgreementMode(section, query);
  return {};
}
