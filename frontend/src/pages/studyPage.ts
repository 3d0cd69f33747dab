import { api, ApiError, viewerPath } from '../api';
import { countOf, h, personName, replaceChildren } from '../dom';
import type { Page } from '../router';
import { createInsurerAccessPanel } from '../shares/insurerAccessPanel';
import { createSharePanel } from '../shares/sharePanel';
import { createStudyLabelsPanel } from './studyLabels';
import type { Me, SeriesSummary } from '../types';
import { verdictBadge } from '../verdict';
import { createAccessLogPanel } from './accessLog';
import { createCopiesPanel } from './copiesPanel';
import { createIntegrityPanel } from './integrityPanel';
import { seriesScoring } from './seriesScoring';

/** One study: its series (open in the viewer) and, for clinicians and admins, its encrypted shares. */
export async function mountStudyPage(container: HTMLElement, me: Me, studyUid: string): Promise<Page> {
  const section = h('section', { className: 'page study-page', 'data-testid': 'study-page' },
    h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')),
    h('p', { className: 'muted' }, 'Loading study…'));
  container.append(section);
  const destroyers: (() => void)[] = [];
  try {
    const study = await api.study(studyUid);
    const scorings = study.series.map((series) => seriesScoring(series, me, () => void refreshVerdict()));
    destroyers.push(...scorings.map((s) => s.destroy));
    const scoringOf = (series: SeriesSummary): HTMLElement => scorings[study.series.indexOf(series)]!.element;
    const canShare = me.role === 'clinician' || me.role === 'admin';
    const verdict = h('span', {}, verdictBadge(study.verdict, study.verdict_score, 'verdict', study.nothing_to_score));
    // A re-score that finishes may change the study's verdict.
    const refreshVerdict = async (): Promise<void> => {
      const fresh = await api.study(studyUid);
      replaceChildren(verdict, verdictBadge(fresh.verdict, fresh.verdict_score, 'verdict', fresh.nothing_to_score));
    };
    replaceChildren(section,
      h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')),
      h('h1', {}, personName(study.patient_name) || study.patient_id || 'Study'),
      h('dl', { className: 'study-facts' },
        h('dt', {}, 'Patient ID'), h('dd', {}, study.patient_id || '—'),
        h('dt', {}, 'Date'), h('dd', {}, study.study_date ?? '—'),
        h('dt', {}, 'Description'), h('dd', {}, study.description || '—'),
        h('dt', {}, 'Model verdict'), h('dd', {}, verdict, ' ',
          h('a', { href: `/api/studies/${encodeURIComponent(study.study_uid)}/report.pdf`, className: 'btn btn-small', download: '', 'data-testid': 'study-report' }, 'Report (PDF)')),
        h('dt', {}, 'Study UID'), h('dd', { className: 'uid' }, study.study_uid)),
      h('section', { className: 'panel' },
        h('h2', {}, 'Series'),
        study.series.length === 0 ? h('p', { className: 'muted' }, 'No series.') :
          h('ul', { className: 'series-list' }, study.series.map((series) =>
            h('li', {},
              h('a', { href: viewerPath(study.study_uid, series.series_uid), 'data-testid': 'open-series' },
                `${series.modality} · ${series.description || 'Series'} · ${countOf(series.num_instances, 'image')}`),
              series.missing_slices ? h('span', { className: 'warn-text small', 'data-testid': 'missing-slices', title: 'Gaps in the slice positions: scores next to them are unreliable (the viewer lists them)' },
                ` · about ${countOf(series.missing_slices, 'slice')} missing`) : null,
              ' ', scoringOf(series))))),
      me.role === 'insurer' ? null : createStudyLabelsPanel(study, me),
      me.role === 'annotator' ? null : createIntegrityPanel(study.study_uid),
      me.role === 'annotator' ? null : createCopiesPanel(study.study_uid),
      canShare ? createInsurerAccessPanel(study.study_uid) : null,
      canShare ? createSharePanel(study.study_uid) : null,
      me.role === 'clinician' || me.role === 'admin' ? createAccessLogPanel(study.study_uid) : null);
  } catch (error) {
    const text = error instanceof ApiError && error.status === 404 ? 'This study does not exist or you cannot see it.' : `Could not load the study: ${(error as Error).message}`;
    replaceChildren(section, h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')), h('p', { className: 'error-text', 'data-testid': 'study-error' }, text));
  }
  return { destroy: () => destroyers.forEach((destroy) => destroy()) };
}
