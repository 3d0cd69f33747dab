import { api, ApiError } from '../api';
import { formatDateTime, h, replaceChildren } from '../dom';
import { INTEGRITY_PROBLEM_KINDS, type AccessEvent } from '../types';

function recipients(event: AccessEvent): string {
  return Array.isArray(event.details.recipients) ? (event.details.recipients as string[]).join(', ') : '?';
}

/** An audit event of the study in words. */
function describe(event: AccessEvent): string {
  const d = event.details as Record<string, string | undefined>;
  switch (event.action) {
    case 'study.view': return `opened it (${d.via ?? 'portal'})`;
    case 'study.share': return `shared it with ${d.user ?? '?'}`;
    case 'study.assign': return `assigned it to ${d.user ?? '?'}`;
    case 'study.share_insurer':
      return (event.details.created === false ? `confirmed insurer ${d.insurer ?? '?'}'s access (already granted)` : `gave insurer ${d.insurer ?? '?'} access`);
    case 'study.unshare_insurer': return `revoked insurer ${d.insurer ?? '?'}'s access`;
    case 'claim.reference_study': return 'referenced it in a claim';
    case 'study.withdraw': return `withdrew it: ${d.reason ?? '?'}`;
    case 'study.restore': return `restored it (withdrawn${d.withdrawn_by ? ` by ${d.withdrawn_by}` : ''}: ${d.withdrawn_reason ?? '?'})`;
    case 'study.integrity_check': {
      const bad = INTEGRITY_PROBLEM_KINDS.map((kind) => Number(event.details[kind] ?? 0));
      return bad.some((n) => n > 0)
        ? `checked its images in the PACS: ${bad[0]} changed, ${bad[1]} missing, ${bad[2]} unverifiable`
        : `checked its images in the PACS: all ${d.checked ?? '?'} as signed`;
    }
    case 'study.tamper_alert':
      return `emailed a tamper alert (${d.verdict ?? '?'}) to ${recipients(event)}`;
    case 'study.copy_move_alert':
      return `emailed a copy-move alert (a copy inside ${d.images ?? '?'} radiograph image(s)) to ${recipients(event)}`;
    case 'study.copy_move_confirm': return `confirmed the copy found in a radiograph image${d.reason ? `: ${d.reason}` : ''}`;
    case 'study.copy_move_dismiss': return `dismissed the copy found in a radiograph image (no copy): ${d.reason ?? '?'}`;
    case 'study.copy_move_cleared':
      return `emailed that ${d.reviewer ?? 'an expert'} dismissed the copy-move finding alerted on to ${recipients(event)}`;
    case 'study.withdrawal_email':
      return `emailed its uploader that it was ${d.change ?? '?'} (${recipients(event)})`;
    case 'study.image_reuse':
      return `emailed an image-reuse alert (${d.shared_images ?? '?'} of its images are in another patient's study) to ${recipients(event)}`;
    default: return event.action;
  }
}

/**
 * Who opened the study and who was given access, newest first: for its uploader and admins (the API
 * answers 403 to anyone else, and the panel then stays hidden).
 */
export function createAccessLogPanel(studyUid: string): HTMLElement {
  const panel = h('section', { className: 'panel', 'data-testid': 'access-log', hidden: true });
  void (async () => {
    try {
      const page = await api.studyAccessLog(studyUid);
      replaceChildren(panel,
        h('h2', {}, 'Access log'),
        h('p', { className: 'muted small' }, `Who opened this study (one entry per person and hour) and who was given access${page.next ? `; the latest ${page.results.length} of ${page.count}` : ''}.`),
        page.results.length === 0 ? h('p', { className: 'muted small' }, 'Nobody has opened it yet.') :
          h('table', { className: 'table' },
            h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Who'), h('th', {}, 'What'))),
            h('tbody', {}, page.results.map((event) => h('tr', { 'data-testid': 'access-row', 'data-action': event.action },
              h('td', { className: 'small' }, formatDateTime(event.time)),
              h('td', {}, event.user ?? 'system', event.role ? h('span', { className: 'muted small' }, ` · ${event.role}`) : null),
              h('td', {}, describe(event)))))));
      panel.hidden = false;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 403)) {
        replaceChildren(panel, h('h2', {}, 'Access log'), h('p', { className: 'error-text' }, `Could not load the access log: ${(error as Error).message}`));
        panel.hidden = false;
      }
    }
  })();
  return panel;
}
