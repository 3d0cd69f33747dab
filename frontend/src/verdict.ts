import { formatPercent, h } from './dom';
import { LABEL_CLASS_NAMES, type LabelClass } from './types';

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
