import { api, ApiError, viewerPath } from '../api';
import { countOf, h, replaceChildren } from '../dom';
import type { Page } from '../router';
import { createInsurerAccessPanel } from '../shares/insurerAccessPanel';
import { createSharePanel } from '../shares/sharePanel';
import { createStudyLabelsPanel } from './studyLabels';
import type { Me } from '../types';
import { NOTHING_TO_SCORE, verdictBadge } from '../verdict';

/** One study: its series (open in the viewer) and, for clinicians and admins, its encrypted shares. */
export async function mountStudyPage(container: HTMLElement, me: Me, studyUid: string): Promise<Page> {
  const section = h('section', { className: 'page study-page', 'data-testid': 'study-page' },
    h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')),
    h('p', { className: 'muted' }, 'Loading study…'));
  container.append(section);
  try {
    const study = await api.study(studyUid);
    const canShare = me.role === 'clinician' || me.role === 'admin';
    const verdict = verdictBadge(study.verdict, study.verdict_score, 'verdict', study.nothing_to_score);
    replaceChildren(section,
      h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')),
      h('h1', {}, study.patient_name || study.patient_id || 'Study'),
      h('dl', { className: 'study-facts' },
        h('dt', {}, 'Patient ID'), h('dd', {}, study.patient_id || '—'),
        h('dt', {}, 'Date'), h('dd', {}, study.study_date ?? '—'),
        h('dt', {}, 'Description'), h('dd', {}, study.description || '—'),
        h('dt', {}, 'Model verdict'), h('dd', {}, verdict),
        h('dt', {}, 'Study UID'), h('dd', { className: 'uid' }, study.study_uid)),
      h('section', { className: 'panel' },
        h('h2', {}, 'Series'),
        study.series.length === 0 ? h('p', { className: 'muted' }, 'No series.') :
          h('ul', { className: 'series-list' }, study.series.map((series) =>
            h('li', {},
              h('a', { href: viewerPath(study.study_uid, series.series_uid), 'data-testid': 'open-series' },
                `${series.modality} · ${series.description || 'Series'} · ${countOf(series.num_instances, 'image')}`),
              series.job ? h('span', { className: `badge status-${series.job.status}` }, `scoring ${series.job.status}`) : null,
              series.job && 'scored_locations' in series.job && series.job.scored_locations === 0
                ? h('span', { className: 'badge verdict-none', title: NOTHING_TO_SCORE, 'data-testid': 'series-nothing-to-score' }, 'no lung tissue: no verdict') : null)))),
      me.role === 'insurer' ? null : createStudyLabelsPanel(study, me),
      canShare ? createInsurerAccessPanel(study.study_uid) : null,
      canShare ? createSharePanel(study.study_uid) : null);
  } catch (error) {
    const text = error instanceof ApiError && error.status === 404 ? 'This study does not exist or you cannot see it.' : `Could not load the study: ${(error as Error).message}`;
    replaceChildren(section, h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')), h('p', { className: 'error-text', 'data-testid': 'study-error' }, text));
  }
  return {};
}
