import { api, viewerPath } from '../api';
import { countOf, h, replaceChildren } from '../dom';
import { Poller } from '../poller';
import type { CopyMoveCheck, CopyMoveImage, CopyMoveRegion, CopyMoveReview, PixelBox, SeriesSummary } from '../types';

const POLL_MS = 5000;

const place = ([x, y]: PixelBox): string => `x ${x}, y ${y}`;

/** How a copy was changed on the way, when it was (the keypoint check measures it; the API says it in words). */
export const copyTransform = (region: CopyMoveRegion): string => (region.changed ? ` (${region.changed})` : '');

export interface CopyMoveNoteOptions {
  /** The check finished while the note waited for it. */
  onFinished?: (check: CopyMoveCheck) => void;
  /** In the viewer: open an image there instead of linking to it. */
  goToSlice?: (index: number) => void;
  /** Experts and admins: confirm each copy, or dismiss it with a reason. */
  canReview?: boolean;
  /** A review was recorded (the study's verdict may have changed). */
  onReviewed?: () => void;
}

/**
 * A radiograph series' copy-move check (the CT detector does not read X-rays): waiting, or which images have a
 * region copied onto another place of the same image, each linked to its slice in the viewer (in the viewer
 * itself, `goToSlice` opens it), with the experts' latest review of each; an expert confirms or dismisses it
 * here. A check still waiting is polled.
 */
export function copyMoveNote(studyUid: string, series: Pick<SeriesSummary, 'series_uid' | 'copy_move'>,
  options: CopyMoveNoteOptions = {}): { element: HTMLElement; destroy: () => void } {
  const { onFinished, goToSlice, canReview = false, onReviewed } = options;
  const element = h('div', { className: 'small copy-move-note', 'data-testid': 'copy-move-check' });
  const poller = new Poller(async () => {
    const fresh = (await api.series(series.series_uid)).copy_move;
    if (!fresh || poller.isStopped) return false;
    render(fresh); // waits again while the check does
    if (fresh.status === 'done') onFinished?.(fresh);
    return false;
  }, POLL_MS);

  function render(check: CopyMoveCheck): void {
    element.dataset.status = check.status;
    if (check.status === 'queued' || check.status === 'running') {
      replaceChildren(element, h('span', { className: 'muted' }, 'Copy-move check: ', check.status === 'queued' ? 'waiting for a worker…' : 'checking…'));
      poller.schedule();
    } else if (check.status === 'failed') {
      replaceChildren(element, h('span', { className: 'error-text' }, `Copy-move check failed: ${check.error}`));
    } else if (check.found.length === 0) {
      replaceChildren(element, h('span', { className: 'muted' },
        `Copy-move check: no region is copied inside ${check.images_checked === 1 ? 'its image' : `any of its ${countOf(check.images_checked, 'image')}`}.`));
    } else {
      replaceChildren(element, h('span', { className: 'warn-text' }, 'Copy-move: the same content at two places of an image (one was copied onto the other):'),
        h('ul', {}, check.found.map(foundImage)));
    }
  }

  function foundImage(image: CopyMoveImage): HTMLElement {
    return h('li', { className: 'copy-move-image', 'data-testid': 'copy-move-image', 'data-review': image.review?.decision ?? 'none' },
      image.regions.map((region) => h('div', { 'data-testid': 'copy-move-found' },
        imageLink(image.slice_index),
        `: ${region.first[2]}×${region.first[3]} px at ${place(region.first)} and at ${place(region.second)}${copyTransform(region)}`)),
      reviewLine(image.review), canReview ? reviewControls(image) : null);
  }

  function reviewLine(review: CopyMoveReview | null): HTMLElement | null {
    if (!review) return canReview ? null : h('div', { className: 'muted' }, 'Not reviewed by an expert yet.');
    const who = `by ${review.by} (${new Date(review.created).toLocaleDateString()})`;
    const text = review.decision === 'confirmed' ? `Confirmed as a copy ${who}` : `Dismissed ${who}`;
    return h('div', { className: review.decision === 'dismissed' ? 'muted' : 'warn-text', 'data-testid': 'copy-move-review' },
      review.reason ? `${text}: ${review.reason}` : text);
  }

  /** Confirm, or "Not a copy…" which asks why before it dismisses. */
  function reviewControls(image: CopyMoveImage): HTMLElement {
    const error = h('span', { className: 'error-text', role: 'alert' });
    const confirm = h('button', { type: 'button', 'data-testid': 'copy-move-confirm' }, 'Confirm copy');
    const notACopy = h('button', { type: 'button', 'data-testid': 'copy-move-not-a-copy' }, 'Not a copy…');
    const reason = h('input', { type: 'text', placeholder: 'Why is it no copy? (e.g. two ribs alike)', 'aria-label': 'Why it is no copy', 'data-testid': 'copy-move-reason' });
    const dismiss = h('button', { type: 'submit', 'data-testid': 'copy-move-dismiss' }, 'Dismiss');
    const form = h('form', { className: 'inline-field', hidden: true }, reason, dismiss);
    const send = async (decision: CopyMoveReview['decision'], why = ''): Promise<void> => {
      for (const button of [confirm, notACopy, dismiss]) button.disabled = true;
      try {
        await api.reviewCopyMove(series.series_uid, image.sop_instance_uid, decision, why);
        const fresh = (await api.series(series.series_uid)).copy_move;
        if (fresh) render(fresh);
        onReviewed?.();
        if (fresh?.found.every((found) => found.review)) void nextFinding().then((next) => element.append(next), () => undefined);
      } catch (failure) {
        replaceChildren(error, `Could not record the review: ${(failure as Error).message}`);
        for (const button of [confirm, notACopy, dismiss]) button.disabled = false;
      }
    };
    confirm.addEventListener('click', () => void send('confirmed'));
    notACopy.addEventListener('click', () => {
      form.hidden = false;
      reason.focus();
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!reason.value.trim()) {
        replaceChildren(error, 'Say why it is no copy (kept with the review).');
        return;
      }
      void send('dismissed', reason.value.trim());
    });
    const decided = image.review?.decision;
    return h('div', { className: 'copy-move-review-controls' },
      decided === 'confirmed' ? null : confirm, decided === 'dismissed' ? null : notACopy, form, error);
  }

  /** Once this series' copies are all reviewed: the next image waiting for a review, anywhere. */
  async function nextFinding(): Promise<HTMLElement> {
    const next = (await api.copyMoveFindings(false)).results[0];
    return h('div', { 'data-testid': 'copy-move-next' }, next
      ? h('a', { href: viewerPath(next.study_uid, next.series_uid, { slice: next.slice_index }), className: 'btn btn-small' }, 'Next copy-move finding to review')
      : h('span', { className: 'muted' }, 'No other copy-move finding is waiting for a review.'));
  }

  function imageLink(index: number): HTMLElement {
    const text = `image ${index + 1}`;
    if (!goToSlice) return h('a', { href: `${viewerPath(studyUid, series.series_uid)}?slice=${index}` }, text);
    const button = h('button', { type: 'button', className: 'link-button' }, text);
    button.addEventListener('click', () => goToSlice(index));
    return button;
  }

  if (series.copy_move) render(series.copy_move);
  return { element, destroy: () => poller.stop() };
}
