import { api, viewerPath } from '../api';
import { h, replaceChildren } from '../dom';
import { navigate, type Page } from '../router';
import type { QueueItem } from '../types';

export function queueItemPath(item: QueueItem): string {
  return viewerPath(item.study_uid, item.series_uid, {
    slice: item.slice_index,
    x: item.x === null ? null : Math.round(item.x),
    y: item.y === null ? null : Math.round(item.y),
    item: item.id,
  });
}

/** Lease the next uncertain item and open the viewer on it; false when the queue is empty. */
export async function openNextQueueItem(): Promise<boolean> {
  const item = await api.nextQueueItem();
  if (!item) return false;
  navigate(queueItemPath(item));
  return true;
}

export function mountQueuePage(container: HTMLElement): Page {
  const button = h('button', { type: 'button', className: 'btn btn-primary btn-large', 'data-testid': 'queue-next' }, 'Next uncertain item');
  const message = h('p', { className: 'queue-message', 'aria-live': 'polite', 'data-testid': 'queue-message' });
  container.append(
    h('section', { className: 'page queue-page' },
      h('h1', {}, 'Review queue'),
      h('p', { className: 'muted' }, 'Takes the item the model is least sure about, reserves it for you and opens it in the viewer at the slice and location to check.'),
      button,
      message),
  );
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
  return {};
}
