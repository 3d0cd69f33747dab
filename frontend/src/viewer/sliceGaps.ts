import { countOf, h } from '../dom';
import type { SeriesDetail } from '../types';

/**
 * Slices missing from the series (gaps in their positions), each a link to the slice before it. The detector
 * reads each slice with its neighbours, so its scores next to a gap are not to be trusted; a gap can also be
 * slices deleted from the scan.
 */
export function sliceGapNote(series: SeriesDetail, goToSlice: (index: number) => void): HTMLElement | null {
  const { gaps, usual_step_mm: step } = series.slice_spacing;
  if (gaps.length === 0 || step === null) return null;
  const missing = gaps.reduce((sum, gap) => sum + gap.missing, 0);
  return h('div', { className: 'slice-gaps warn-text small', 'data-testid': 'slice-gaps' },
    h('p', {}, `About ${countOf(missing, 'slice')} missing in ${countOf(gaps.length, 'gap')} (the usual step is ${step} mm). `
      + 'Scores next to a gap are unreliable; slices may also have been deleted.'),
    h('ul', { className: 'gap-list' }, gaps.map((gap) => {
      const link = h('button', { type: 'button', className: 'link-button', 'data-testid': 'slice-gap', 'data-after-index': String(gap.after_index) },
        `after slice ${gap.after_index + 1}: z ${gap.z_from.toFixed(1)} → ${gap.z_to.toFixed(1)} mm, ~${gap.missing} missing`);
      link.addEventListener('click', () => goToSlice(gap.after_index));
      return h('li', {}, link);
    })));
}
