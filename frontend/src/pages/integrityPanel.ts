import { api, viewerPath } from '../api';
import { countOf, h, replaceChildren } from '../dom';
import type { IntegrityProblemKind, StudyIntegrity } from '../types';

const GROUPS: [IntegrityProblemKind, string][] = [
  ['changed', 'Changed in the PACS since upload'],
  ['missing', 'Missing from the PACS'],
  ['unverifiable', 'Cannot be verified'],
];

/**
 * Does the PACS still hold what the portal signed at upload? Fetches every image of the study and compares
 * its pixels with the provenance ledger (CT-GAN tampers with scans inside the PACS, after they are stored).
 */
export function createIntegrityPanel(studyUid: string): HTMLElement {
  const result = h('div', { 'data-testid': 'integrity-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', className: 'btn', 'data-testid': 'integrity-check' }, 'Check the images in the PACS');
  button.addEventListener('click', async () => {
    button.disabled = true;
    replaceChildren(result, h('p', { className: 'muted small' }, 'Fetching every image from the PACS…'));
    try {
      replaceChildren(result, render(await api.studyIntegrity(studyUid)));
    } catch (error) {
      replaceChildren(result, h('p', { className: 'error-text' }, `Could not check: ${(error as Error).message}`));
    } finally {
      button.disabled = false;
    }
  });

  function render(report: StudyIntegrity): HTMLElement {
    const summary = report.ok
      ? h('p', { className: 'ok-text', 'data-testid': 'integrity-summary', 'data-ok': 'true' },
        `All ${countOf(report.checked, 'image')} match what the portal signed at upload.`)
      : h('p', { className: 'error-text', 'data-testid': 'integrity-summary', 'data-ok': 'false' },
        `${report.matching} of ${countOf(report.checked, 'image')} match what the portal signed at upload.`);
    const groups = GROUPS.filter(([key]) => report[key].length > 0).map(([key, title]) =>
      h('div', { 'data-testid': `integrity-${key}` },
        h('h3', {}, `${title} (${report[key].length})`),
        h('ul', { className: 'small' }, report[key].map((problem) =>
          h('li', { 'data-testid': 'integrity-problem' },
            problem.slice_index === null ? 'Image' : h('a', { href: viewerPath(studyUid, problem.series_uid, { slice: problem.slice_index }) }, `Slice ${problem.slice_index + 1}`),
            `: ${problem.reason}`)))));
    return h('div', {}, summary, ...groups);
  }

  return h('section', { className: 'panel', 'data-testid': 'integrity-panel' },
    h('h2', {}, 'Integrity'),
    h('p', { className: 'muted small' }, 'Fetches every image of this study from the PACS and compares its pixels with the signed record made when it was uploaded, and the header fields that change how it reads (Hounsfield conversion, slice position, pixel spacing, patient): an image changed inside the PACS (the CT-GAN attack) or lost there is named.'),
    button, result);
}
