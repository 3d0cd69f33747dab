import { api, viewerPath } from '../api';
import { countOf, h, replaceChildren } from '../dom';
import { Poller } from '../poller';
import type { CopyMoveCheck, CopyMoveRegion, PixelBox, SeriesSummary } from '../types';

const POLL_MS = 5000;

const place = ([x, y]: PixelBox): string => `x ${x}, y ${y}`;

/** How a copy was changed on the way, when it was (the keypoint check measures it). */
export function copyTransform(region: CopyMoveRegion): string {
  if (region.rotation === undefined || region.scale === undefined) return '';
  const turned = Math.abs(region.rotation) >= 1 ? `turned ${Math.round(Math.abs(region.rotation))}°` : '';
  const resized = Math.abs(region.scale - 1) >= 0.02 ? `resized ×${region.scale.toFixed(2)}` : '';
  return turned || resized ? ` (${[turned, resized].filter(Boolean).join(', ')})` : '';
}

/**
 * A radiograph series' copy-move check (the CT detector does not read X-rays): waiting, or which images have a
 * region copied onto another place of the same image, each linked to its slice in the viewer (in the viewer
 * itself, `goToSlice` opens it). A check still waiting is polled; `onFinished` when it finishes meanwhile.
 */
export function copyMoveNote(studyUid: string, series: Pick<SeriesSummary, 'series_uid' | 'copy_move'>,
  onFinished: (check: CopyMoveCheck) => void, goToSlice?: (index: number) => void): { element: HTMLElement; destroy: () => void } {
  const element = h('div', { className: 'small copy-move-note', 'data-testid': 'copy-move-check' });
  const poller = new Poller(async () => {
    const fresh = (await api.series(series.series_uid)).copy_move;
    if (!fresh || poller.isStopped) return false;
    render(fresh); // waits again while the check does
    if (fresh.status === 'done') onFinished(fresh);
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
        h('ul', {}, check.found.flatMap((image) => image.regions.map((region) => h('li', { 'data-testid': 'copy-move-found' },
          imageLink(image.slice_index),
          `: ${region.first[2]}×${region.first[3]} px at ${place(region.first)} and at ${place(region.second)}${copyTransform(region)}`)))));
    }
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
