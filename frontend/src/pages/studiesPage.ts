import { api, ApiError, viewerPath } from '../api';
import { formatDateTime, h, personName, replaceChildren, seriesLine } from '../dom';
import { updateQuery, type Page } from '../router';
import { LABEL_CLASS_NAMES, LABEL_CLASSES, type Me, type ModelVersion, type StudySummary } from '../types';
import { studyVerdict } from '../verdict';

const FILTER_KEYS = ['search', 'modality', 'verdict', 'date_from', 'date_to', 'ordering', 'withdrawn'] as const;
const PAGE_SIZE_GUESS = 20;

/** What gave the verdict: the detector's model, or for radiographs only the copy-move check (no model). */
function verdictSource(study: StudySummary): string {
  const model: ModelVersion | string | null = study.model_version;
  if (model) return typeof model === 'string' ? model : model.name;
  return study.copy_move_images === null || study.copy_move_images === undefined ? '—' : 'copy-move check';
}

function modalities(value: string[] | string): string {
  return Array.isArray(value) ? value.join(', ') : value;
}

export function mountStudiesPage(container: HTMLElement, me: Me, initialQuery: URLSearchParams): Page {
  let page = Math.max(1, Number(initialQuery.get('page') ?? '1') || 1);
  let request = 0;

  const field = (name: string, label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement => {
    input.name = name;
    input.id = `filter-${name}`;
    input.value = initialQuery.get(name) ?? '';
    input.dataset.testid = `filter-${name}`;
    return h('div', { className: 'field' }, h('label', { for: input.id }, label), input);
  };
  const select = (options: [string, string][]): HTMLSelectElement =>
    h('select', {}, options.map(([value, text]) => h('option', { value }, text)));

  const form = h('form', { className: 'filters', role: 'search', 'data-testid': 'study-filters' },
    field('search', 'Patient', h('input', { type: 'search', placeholder: 'Name or ID' })),
    field('modality', 'Modality', select([['', 'Any'], ['CT', 'CT'], ['MR', 'MR'], ['CR', 'CR'], ['DX', 'DX'], ['PT', 'PT']])),
    field('verdict', 'Verdict', select([['', 'Any'], ['tampered', 'Tampering suspected (FB, FM or copy-move)'], ['genuine', 'No tampering found (TB or TM)'], ['copy_move', 'Copy-move in a radiograph'],
      ...LABEL_CLASSES.map((c): [string, string] => [c, `${c} – ${LABEL_CLASS_NAMES[c]}`]), ['unscored', 'Not scored yet'], ['nothing_to_score', 'No verdict: no lung tissue']])),
    field('date_from', 'From', h('input', { type: 'date' })),
    field('date_to', 'To', h('input', { type: 'date' })),
    field('ordering', 'Sort by', select([['', 'Newest upload'], ['suspicion', 'Tampering suspected first'], ['study_date', 'Study date'], ['patient', 'Patient ID']])),
    // Withdrawn studies are hidden from everyone; admins list them here to restore one.
    me.role === 'admin' ? field('withdrawn', 'Show', select([['', 'Current studies'], ['true', 'Withdrawn studies']])) : null,
    h('div', { className: 'field field-actions' },
      h('button', { type: 'submit', className: 'btn btn-primary', 'data-testid': 'filter-apply' }, 'Search'),
      h('button', { type: 'reset', className: 'btn' }, 'Clear')));

  const status = h('p', { className: 'muted list-status', 'aria-live': 'polite', 'data-testid': 'studies-status' }, 'Loading…');
  const body = h('tbody', {});
  const prev = h('button', { type: 'button', className: 'btn', 'data-testid': 'page-prev' }, '← Previous');
  const next = h('button', { type: 'button', className: 'btn', 'data-testid': 'page-next' }, 'Next →');
  const pageInfo = h('span', { className: 'muted', 'data-testid': 'page-info' }, '');

  container.append(
    h('section', { className: 'page studies-page' },
      h('h1', {}, 'Studies'),
      form,
      status,
      h('div', { className: 'table-wrap' },
        h('table', { className: 'table studies-table', 'data-testid': 'studies-table' },
          h('thead', {}, h('tr', {},
            h('th', {}, 'Patient'), h('th', {}, 'Date'), h('th', {}, 'Modality'), h('th', {}, 'Description'),
            h('th', { className: 'num' }, 'Series'), h('th', { className: 'num' }, 'Images'), h('th', {}, 'Model verdict'), h('th', {}, 'Model'), h('th', {}, h('span', { className: 'visually-hidden' }, 'Actions')))),
          body)),
      h('div', { className: 'pagination' }, prev, pageInfo, next)),
  );

  function filters(): Record<string, string> {
    const data = new FormData(form);
    const out: Record<string, string> = {};
    for (const key of FILTER_KEYS) out[key] = String(data.get(key) ?? '').trim();
    return out;
  }

  async function toggleSeries(study: StudySummary, row: HTMLTableRowElement, button: HTMLButtonElement): Promise<void> {
    const existing = row.nextElementSibling;
    if (existing?.classList.contains('series-row')) {
      existing.remove();
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    button.setAttribute('aria-expanded', 'true');
    const cell = h('td', { colspan: '9' }, h('span', { className: 'muted' }, 'Loading series…'));
    row.after(h('tr', { className: 'series-row', 'data-testid': 'series-row' }, cell));
    try {
      const detail = await api.study(study.study_uid);
      replaceChildren(cell, detail.series.length === 0 ? h('span', { className: 'muted' }, 'No series.') :
        h('ul', { className: 'series-list' }, detail.series.map((series) =>
          h('li', {},
            h('a', { href: viewerPath(study.study_uid, series.series_uid), 'data-testid': 'open-series' },
              seriesLine(series)),
            series.job ? h('span', { className: `badge status-${series.job.status}` }, `scoring ${series.job.status}`) : null))));
    } catch (error) {
      replaceChildren(cell, h('span', { className: 'error-text' }, (error as Error).message));
    }
  }

  function renderRows(studies: StudySummary[]): void {
    replaceChildren(body, studies.map((study) => {
      const expand = h('button', { type: 'button', className: 'btn btn-small', 'aria-expanded': 'false', 'data-testid': 'study-expand' }, 'Series');
      const row = h('tr', { 'data-testid': 'study-row', 'data-study-uid': study.study_uid },
        h('td', {},
          h('a', { href: `/studies/${encodeURIComponent(study.study_uid)}`, 'data-testid': 'open-study' }, personName(study.patient_name) || study.patient_id || 'Study'),
          h('div', { className: 'muted small' }, study.patient_id),
          study.withdrawn ? h('div', { className: 'warn-text small', 'data-testid': 'withdrawn-note' },
            `Withdrawn ${formatDateTime(study.withdrawn.at)}${study.withdrawn.by ? ` by ${study.withdrawn.by}` : ''}: ${study.withdrawn.reason}`) : null),
        h('td', {}, study.study_date ?? '—'),
        h('td', {}, modalities(study.modalities)),
        h('td', { className: 'truncate', title: study.description }, study.description || '—'),
        h('td', { className: 'num' }, study.num_series),
        h('td', { className: 'num' }, study.num_instances),
        h('td', {}, studyVerdict(study)),
        h('td', { className: 'small', 'data-testid': 'verdict-source' }, verdictSource(study)),
        h('td', {}, study.withdrawn ? null : expand));
      expand.addEventListener('click', () => void toggleSeries(study, row, expand));
      return row;
    }));
  }

  async function load(): Promise<void> {
    const mine = ++request;
    const current = filters();
    updateQuery({ ...Object.fromEntries(Object.entries(current).map(([k, v]) => [k, v || null])), page: page > 1 ? page : null });
    status.textContent = 'Loading…';
    status.className = 'muted list-status';
    try {
      const result = await api.studies({ ...current, page });
      if (mine !== request) return;
      renderRows(result.results);
      const pageSize = Math.max(result.results.length, PAGE_SIZE_GUESS);
      const pages = Math.max(1, Math.ceil(result.count / pageSize));
      pageInfo.textContent = `Page ${page}${result.next || page > 1 ? ` of ${pages}` : ''} · ${result.count} studies`;
      prev.disabled = !result.previous;
      next.disabled = !result.next;
      const filtered = Object.values(current).some(Boolean);
      status.textContent = result.count === 0
        ? (filtered ? 'No studies match these filters.' : 'No studies yet. Upload a series to get started.')
        : '';
    } catch (error) {
      if (mine !== request) return;
      if (error instanceof ApiError && error.status === 404 && page > 1) {
        page = 1;
        return load();
      }
      replaceChildren(body);
      status.textContent = `Could not load studies: ${(error as Error).message}`;
      status.className = 'error-text list-status';
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    page = 1;
    void load();
  });
  form.addEventListener('reset', () => window.setTimeout(() => {
    page = 1;
    void load();
  }));
  form.addEventListener('change', (event) => {
    if ((event.target as HTMLElement).tagName === 'SELECT') {
      page = 1;
      void load();
    }
  });
  prev.addEventListener('click', () => {
    page = Math.max(1, page - 1);
    void load();
  });
  next.addEventListener('click', () => {
    page += 1;
    void load();
  });
  void load();
  return {};
}
