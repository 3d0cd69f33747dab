import { h } from '../dom';
import { CT_PRESETS, IMAGE_PRESETS } from './windowPresets';

export const SHORTCUTS: [string, string][] = [
  ['↑ / ↓ or wheel', 'Previous / next slice'],
  ['PgUp / PgDn', '10 slices back / forward'],
  ['Home / End', 'First / last slice'],
  ...[...CT_PRESETS, ...IMAGE_PRESETS].map((p): [string, string] => [p.key.toUpperCase(), p.description]),
  ['R', 'Reset zoom, pan and window'],
  ['+ / −', 'Zoom in / out'],
  ['A / W / P / Z / D', 'Left button: annotate / window-level / pan / zoom / measure a distance (mm, saved with the study)'],
  ['Right drag / middle drag', 'Zoom / pan'],
  ['Click or drag (annotate)', 'Mark a point or a box'],
  ['1 2 3 4', 'Save mark as TB / TM / FB / FM (or change the selected label)'],
  ['Drag own label', 'Move it'],
  ['Delete', 'Delete the selected label (with Measure on: your selected measurement)'],
  ['Ctrl+Z', 'Undo your last label or measurement change on this series (new, class, move, delete; kept across a reload)'],
  ['[ / ]', 'Experts: previous / next label on this slice; then 1–4 and a reason relabel it'],
  ['H', 'Show / hide the tamper heatmap (CT) or the copy-move boxes (radiographs)'],
  ['C', 'Reformat: coronal / sagittal (through the pointer; click it to open a slice)'],
  ['N / Shift+N', 'Next / previous suspicious location'],
  ['X', 'Compare with a copy of the scan in another study: red denser here, blue less dense (when one exists)'],
  ['Q', 'Next uncertain item (when opened from the review queue)'],
  ['Esc', 'Cancel mark or selection, close help'],
  ['?', 'Show / hide this help'],
];

export function renderHelpPanel(onClose: () => void): HTMLElement {
  const close = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'help-close' }, 'Close');
  close.addEventListener('click', onClose);
  return h('div', { className: 'help-panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'help-title', 'data-testid': 'help-panel', hidden: true },
    h('div', { className: 'help-head' }, h('h2', { id: 'help-title' }, 'Keyboard shortcuts'), close),
    h('table', { className: 'shortcut-table' },
      h('tbody', {}, SHORTCUTS.map(([keys, action]) => h('tr', {}, h('th', { scope: 'row' }, h('kbd', {}, keys)), h('td', {}, action))))));
}
