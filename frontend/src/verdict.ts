import { formatPercent, h } from './dom';
import { LABEL_CLASS_NAMES, type LabelClass, type StudySummary } from './types';

export const isTamperVerdict = (verdict: LabelClass | null): boolean => verdict === 'FB' || verdict === 'FM';

/** Why a scored series or study has no verdict: the detector scores locations in and around the lungs only. */
export const NOTHING_TO_SCORE = 'The detector found no lung tissue to score (it scores locations in and around the lungs only), so it gives no verdict.';

/** The model's verdict in words. The percentage is the probability of the verdict's own class, so it is
 * shown for tamper verdicts only: "TM 98 %" read as "98 % suspicious" is the misreading to avoid. */
export function verdictBadge(verdict: LabelClass | null, score: number | null, testid = 'verdict', nothingToScore = false): HTMLElement {
  if (!verdict && nothingToScore) {
    return h('span', { className: 'badge verdict-none', 'data-testid': testid, 'data-verdict': 'none', title: NOTHING_TO_SCORE }, 'No verdict · no lung tissue');
  }
  if (!verdict) return h('span', { className: 'badge verdict-none', 'data-testid': testid }, 'Not scored');
  const tampered = isTamperVerdict(verdict);
  const title = `${verdict}: ${LABEL_CLASS_NAMES[verdict]} (${formatPercent(score)})`
    + (tampered ? '' : '; no location reached the model\'s tamper threshold');
  return h('span', { className: `badge verdict-${verdict}`, title, 'data-testid': testid, 'data-verdict': verdict },
    tampered ? `Tampering suspected · ${verdict} ${formatPercent(score)}` : `No tampering found · ${verdict}`);
}

/**
 * A study's verdicts: the CT detector's, and for its radiographs the copy-move check's (the detector cannot
 * read X-rays), less the copies an expert dismissed. A study of radiographs only shows the check's result
 * rather than "Not scored".
 */
export function studyVerdict(study: Pick<StudySummary, 'verdict' | 'verdict_score' | 'nothing_to_score' | 'copy_move_images' | 'copy_move_dismissed' | 'copy_move_confirmed'>, testid = 'verdict'): HTMLElement {
  const checked = study.copy_move_images ?? null;
  const dismissed = study.copy_move_dismissed ?? 0;
  const confirmed = study.copy_move_confirmed ?? 0;
  const images = (n: number): string => (n === 1 ? '1 image' : `${n} images`);
  const dismissedNote = dismissed ? `${dismissed === 1 ? '1 more image' : `${dismissed} more images`} dismissed by an expert (no copy)` : '';
  const detector = study.verdict || study.nothing_to_score || checked === null
    ? verdictBadge(study.verdict, study.verdict_score, testid, study.nothing_to_score) : null;
  const copies = checked === null ? null : checked > 0
    ? h('span', { className: 'badge verdict-FM', 'data-testid': `${testid}-copy-move`, 'data-copies': String(checked), title: ['A region of a radiograph is at two places of the image: one was copied onto the other', dismissedNote].filter(Boolean).join('; ') },
      confirmed === checked ? `Tampering confirmed by an expert · copy-move in ${images(checked)}`
        : `Tampering suspected · copy-move in ${images(checked)}${confirmed ? ` (${confirmed} confirmed by an expert)` : ''}`)
    : h('span', { className: 'badge verdict-none', 'data-testid': `${testid}-copy-move`, 'data-copies': '0', title: 'Its radiographs were checked for a region copied inside an image' },
      dismissed ? `No copy-move left · ${images(dismissed)} dismissed by an expert` : 'No copy-move found');
  return h('span', { className: 'study-verdict' }, detector, detector && copies ? ' ' : null, copies);
}
