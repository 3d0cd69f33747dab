import { api } from '../api';
import type { StudyCopy } from '../types';
import { commaSeparated, h, sliceRange } from '../dom';

/**
 * Where this series differs from another study holding the same images (by the pixel hashes signed at
 * upload): the slices one of the two copies was changed at, each a link, and a button that shows the
 * difference over the image (`onCompare`). Nothing when there is no copy.
 */
export async function copyDifferenceNote(studyUid: string, seriesUid: string, goToSlice: (index: number) => void,
  onCompare: (copy: StudyCopy, button: HTMLButtonElement) => void): Promise<HTMLElement | null> {
  const copies = await api.studyCopies(studyUid);
  const notes = copies.flatMap((copy) => copy.differing.filter((d) => d.series_uid === seriesUid).map((d) => {
    const links = d.slices.map(([first, last]) => {
      const link = h('button', { type: 'button', className: 'link-button', 'data-testid': 'copy-slices', 'data-first': String(first) },
        sliceRange(first, last));
      link.addEventListener('click', () => goToSlice(first));
      return link;
    });
    const compare = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'copy-compare', 'aria-pressed': 'false', title: 'Show where this image differs from the copy (X)' }, 'Compare');
    compare.addEventListener('click', () => onCompare(copy, compare));
    return h('p', { 'data-testid': 'copy-note' },
      `Same images as study of ${copy.patient_id} (${copy.shared_images} of ${copy.images}) except `,
      ...commaSeparated(links), ': one of the two copies was changed there. ', compare);
  }));
  return notes.length ? h('div', { className: 'copy-notes warn-text small' }, notes) : null;
}
