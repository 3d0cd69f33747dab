import { api } from '../api';
import { countOf, h, replaceChildren, saveBlob } from '../dom';
import type { Me, StudyDetail } from '../types';

/** A study page's "Labels" section: how many, download as CT-GAN CSV or DICOM SR; experts and admins import
 * a CT-GAN table (type,uuid,slice,x,y) onto one of the study's series. */
export function createStudyLabelsPanel(study: StudyDetail, me: Me): HTMLElement {
  const count = h('p', { className: 'muted small', 'data-testid': 'labels-count' }, 'Counting labels…');
  const message = h('div', { 'aria-live': 'polite', 'data-testid': 'labels-message' });
  const showError = (what: string, error: unknown): void =>
    replaceChildren(message, h('p', { className: 'error-text', role: 'alert' }, `${what}: ${(error as Error).message}`));

  const download = (format: 'csv' | 'sr', label: string): HTMLButtonElement => {
    const button = h('button', { type: 'button', className: 'btn', 'data-testid': `labels-export-${format}` }, label);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const { blob, filename } = await api.exportLabels(study.study_uid, format);
        saveBlob(blob, filename);
        replaceChildren(message);
      } catch (error) {
        showError('Could not export', error);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  };

  async function recount(): Promise<void> {
    try {
      const n = await api.studyLabelCount(study.study_uid);
      count.textContent = n === 0 ? 'No labels on this study yet.' : `${countOf(n, 'label')} on this study.`;
    } catch (error) {
      count.textContent = `Labels unavailable: ${(error as Error).message}`;
    }
  }

  let importForm: HTMLElement | null = null;
  if ((me.role === 'expert' || me.role === 'admin') && study.series.length > 0) {
    const file = h('input', { type: 'file', id: 'ctgan-file', accept: '.csv,text/csv', required: true, 'data-testid': 'labels-import-file' });
    const series = h('select', { id: 'ctgan-series', 'data-testid': 'labels-import-series' },
      study.series.map((s) => h('option', { value: s.series_uid }, `${s.modality} · ${s.description || 'Series'} · ${countOf(s.num_instances, 'image')}`)));
    const submit = h('button', { type: 'submit', className: 'btn btn-primary', 'data-testid': 'labels-import-submit' }, 'Import');
    const form = h('form', { className: 'share-form', 'data-testid': 'labels-import-form' },
      h('div', { className: 'field' }, h('label', { for: 'ctgan-file' }, 'CT-GAN label table (type,uuid,slice,x,y)'), file),
      h('div', { className: 'field field-wide' }, h('label', { for: 'ctgan-series' }, 'Onto series'), series),
      h('div', { className: 'field field-actions' }, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const chosen = file.files?.[0];
      if (!chosen) return;
      submit.disabled = true;
      try {
        const result = await api.importCtganCsv(chosen, series.value);
        replaceChildren(message, h('p', { className: 'small', 'data-testid': 'labels-imported' },
          `Imported ${countOf(result.imported, 'label')} from ${chosen.name}.`));
        file.value = '';
        await recount();
      } catch (error) {
        showError('Nothing was imported', error);
      } finally {
        submit.disabled = false;
      }
    });
    importForm = form;
  }

  void recount();
  return h('section', { className: 'panel labels-panel', 'aria-labelledby': 'labels-title', 'data-testid': 'labels-panel' },
    h('h2', { id: 'labels-title' }, 'Labels'),
    count,
    h('p', {}, download('csv', 'Download CT-GAN CSV'), ' ', download('sr', 'Download DICOM SR')),
    importForm,
    message);
}
