import { api, ApiError, viewerPath } from '../api';
import { countOf, h, personName, replaceChildren, seriesLine } from '../dom';
import { navigate, type Page } from '../router';
import { createInsurerAccessPanel } from '../shares/insurerAccessPanel';
import { createSharePanel } from '../shares/sharePanel';
import { createStudyLabelsPanel } from './studyLabels';
import type { Me, SeriesSummary, StudyDetail } from '../types';
import { studyVerdict } from '../verdict';
import { createAccessLogPanel } from './accessLog';
import { createCopiesPanel } from './copiesPanel';
import { copyMoveNote } from './copyMoveNote';
import { createIntegrityPanel } from './integrityPanel';
import { seriesScoring } from './seriesScoring';
import { createWithdrawPanel, withdrawnBanner } from './withdrawPanel';

/** One study: its series (open in the viewer) and, for clinicians and admins, its encrypted shares. */
export async function mountStudyPage(container: HTMLElement, me: Me, studyUid: string): Promise<Page> {
  const section = h('section', { className: 'page study-page', 'data-testid': 'study-page' },
    h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')),
    h('p', { className: 'muted' }, 'Loading study…'));
  container.append(section);
  const destroyers: (() => void)[] = [];
  const reopen = (): void => navigate(location.pathname, { replace: true });
  try {
    const study = await api.study(studyUid);
    if (study.withdrawn) {
      replaceChildren(section, ...studyHeader(study),
        withdrawnBanner(study, me.role === 'admin', reopen),
        h('section', { className: 'panel' }, h('h2', {}, 'Series'),
          h('ul', { className: 'series-list' }, study.series.map((series) =>
            h('li', {}, seriesLine(series))))),
        createAccessLogPanel(study.study_uid));
      return { destroy: () => undefined };
    }
    const scorings = study.series.map((series) => seriesScoring(series, me, () => void refreshVerdict()));
    destroyers.push(...scorings.map((s) => s.destroy));
    const scoringOf = (series: SeriesSummary): HTMLElement => scorings[study.series.indexOf(series)]!.element;
    const copyMoves = study.series.map((series) => (series.copy_move ? copyMoveNote(study.study_uid, series, {
      onFinished: () => void refreshVerdict(), onReviewed: () => void refreshVerdict(), canReview: ['expert', 'admin'].includes(me.role),
    }) : null));
    destroyers.push(...copyMoves.map((c) => () => c?.destroy()));
    const canShare = me.role === 'clinician' || me.role === 'admin';
    const verdict = h('span', {}, studyVerdict(study));
    // A re-score that finishes may change the study's verdict.
    const refreshVerdict = async (): Promise<void> => {
      const fresh = await api.study(studyUid);
      replaceChildren(verdict, studyVerdict(fresh));
    };
    const onWithdrawn = (): void => {
      if (me.role === 'admin') return reopen();
      destroyers.forEach((destroy) => destroy()); // the series' scoring status stops polling
      replaceChildren(section, ...studyHeader(study),
        h('p', { className: 'banner banner-ok', role: 'status', 'data-testid': 'withdrawn-done' },
          'Study withdrawn. Only admins see it now; its images stay in the PACS, and an admin can restore it.'));
    };
    replaceChildren(section, ...studyHeader(study, h('dd', {}, verdict, ' ',
          h('a', { href: `/api/studies/${encodeURIComponent(study.study_uid)}/report.pdf`, className: 'btn btn-small', download: '', 'data-testid': 'study-report' }, 'Report (PDF)'))),
      h('section', { className: 'panel' },
        h('h2', {}, 'Series'),
        study.series.length === 0 ? h('p', { className: 'muted' }, 'No series.') :
          h('ul', { className: 'series-list' }, study.series.map((series) =>
            h('li', {},
              h('a', { href: viewerPath(study.study_uid, series.series_uid), 'data-testid': 'open-series' },
                seriesLine(series)),
              series.missing_slices ? h('span', { className: 'warn-text small', 'data-testid': 'missing-slices', title: 'Gaps in the slice positions: scores next to them are unreliable (the viewer lists them)' },
                ` · about ${countOf(series.missing_slices, 'slice')} missing`) : null,
              ' ', scoringOf(series), copyMoves[study.series.indexOf(series)]?.element)))),
      me.role === 'insurer' ? null : createStudyLabelsPanel(study, me),
      me.role === 'annotator' ? null : createIntegrityPanel(study.study_uid),
      me.role === 'annotator' ? null : createCopiesPanel(study.study_uid),
      canShare ? createInsurerAccessPanel(study.study_uid) : null,
      canShare ? createSharePanel(study.study_uid) : null,
      me.role === 'clinician' || me.role === 'admin' ? createAccessLogPanel(study.study_uid) : null,
      study.can_withdraw ? createWithdrawPanel(study, onWithdrawn) : null);
  } catch (error) {
    const text = error instanceof ApiError && error.status === 404 ? 'This study does not exist or you cannot see it.' : `Could not load the study: ${(error as Error).message}`;
    replaceChildren(section, h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')), h('p', { className: 'error-text', 'data-testid': 'study-error' }, text));
  }
  return { destroy: () => destroyers.forEach((destroy) => destroy()) };
}

/** The back link, the patient's name and the study's facts; `verdict`: the model verdict's cell, if shown. */
function studyHeader(study: StudyDetail, verdict: HTMLElement | null = null): HTMLElement[] {
  return [
    h('p', { className: 'small' }, h('a', { href: '/studies' }, '← Studies')),
    h('h1', {}, personName(study.patient_name) || study.patient_id || 'Study'),
    h('dl', { className: 'study-facts' },
      h('dt', {}, 'Patient ID'), h('dd', {}, study.patient_id || '—'),
      h('dt', {}, 'Date'), h('dd', {}, study.study_date ?? '—'),
      h('dt', {}, 'Description'), h('dd', {}, study.description || '—'),
      verdict ? h('dt', {}, 'Model verdict') : null, verdict,
      h('dt', {}, 'Study UID'), h('dd', { className: 'uid' }, study.study_uid)),
  ];
}
