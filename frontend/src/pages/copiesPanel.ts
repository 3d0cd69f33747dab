import { api, viewerPath } from '../api';
import { commaSeparated, countOf, h, replaceChildren, sliceRange } from '../dom';
import type { StudyCopy } from '../types';

/**
 * Other studies holding this study's images pixel for pixel (by the hashes signed at upload), and the slices
 * where they differ: a scan reused under another patient or claim, or the place where one copy was changed.
 */
export function createCopiesPanel(studyUid: string): HTMLElement {
  const body = h('div', { 'data-testid': 'copies-result', 'aria-live': 'polite' }, h('p', { className: 'muted small' }, 'Looking for the same images in other studies…'));
  void (async () => {
    try {
      const copies = await api.studyCopies(studyUid);
      replaceChildren(body, copies.length === 0
        ? h('p', { className: 'muted small', 'data-testid': 'copies-none' }, 'No other study you can see holds any of these images.')
        : h('ul', { className: 'copies-list' }, copies.map(renderCopy)));
    } catch (error) {
      replaceChildren(body, h('p', { className: 'error-text' }, `Could not look for copies: ${(error as Error).message}`));
    }
  })();

  function renderCopy(copy: StudyCopy): HTMLElement {
    const same = copy.shared_images === copy.images;
    const differing = copy.differing.flatMap((series) => series.slices.map(([first, last]) =>
      h('a', { href: viewerPath(studyUid, series.series_uid, { slice: first }), 'data-testid': 'copy-differs' },
        sliceRange(first, last))));
    return h('li', { 'data-testid': 'copy', 'data-study-uid': copy.study_uid },
      h('a', { href: `/studies/${encodeURIComponent(copy.study_uid)}` }, `${copy.patient_id} · ${copy.study_date ?? 'no date'} · ${copy.description || 'study'}`),
      `: ${copy.shared_images} of ${countOf(copy.images, 'image')} identical`,
      same ? ' (the same images).' : h('span', { className: 'warn-text' }, '; differ at ', ...commaSeparated(differing), '.'));
  }

  return h('section', { className: 'panel', 'data-testid': 'copies-panel' },
    h('h2', {}, 'Same images in other studies'),
    h('p', { className: 'muted small' }, 'Studies whose images are pixel for pixel those of this one (by the hashes signed at upload): a re-export, or the same scan reused under another patient or claim. Where the two differ, one of them was changed there.'),
    body);
}
