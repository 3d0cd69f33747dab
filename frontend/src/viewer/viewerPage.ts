import { api, ApiError } from '../api';
import { countOf, formatPercent, h, isTypingTarget, replaceChildren } from '../dom';
import { copyMoveNote } from '../pages/copyMoveNote';
import { openNextQueueItem } from '../pages/queuePage';
import { Poller } from '../poller';
import { updateQuery, type Page } from '../router';
import {
  LABEL_CLASS_NAMES, LABEL_CLASSES, type Box, type Label, type LabelClass, type LocationScore, type Me,
  type CopyMoveCheck, type SeriesDetail, type SeriesScores, type StudyCopy, sameLabelId,
} from '../types';
import { isTamperVerdict, NOTHING_TO_SCORE, verdictBadge } from '../verdict';
import { AdjudicationBox } from './adjudicationBox';
import { CompareOverlay } from './compareOverlay';
import { copyDifferenceNote } from './copyNote';
import { QueueRebuildBox } from './queueRebuildBox';
import { HeatmapOverlay } from './heatmapOverlay';
import { LabelReview } from './labelReview';
import { valueAt } from './reformat';
import { ReformatPanel } from './reformatPanel';
import { CLASS_COLOURS, MarkerLayer, type PendingMark } from './markerLayer';
import { SavedMeasurements, type MeasurementUndo } from './measurements';
import { imageIdFor, prepareImageIds } from './seriesLoader';
import { renderHelpPanel } from './shortcuts';
import { sliceGapNote } from './sliceGaps';
import { CoreEnums, StackViewer, clampIndex, type Point, type PrimaryTool } from './stackViewer';
import { startViewerStats } from './viewerStats';
import { windowPresetsFor, type WindowPreset } from './windowPresets';

export interface ViewerRoute {
  me: Me;
  studyUid: string;
  seriesUid: string;
  query: URLSearchParams;
}

const DRAG_THRESHOLD_PX = 4;
const SCORE_POLL_MS = 3000;

function numberParam(query: URLSearchParams, key: string): number | null {
  const raw = query.get(key);
  if (raw === null || raw === '') return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

/** mm per column, per row and per slice step (the median z step), for the reformat's aspect ratio. */
function seriesSpacing(series: SeriesDetail | null): { column: number; row: number; slice: number } {
  const spacing = series?.instances.find((i) => i.pixel_spacing)?.pixel_spacing ?? [1, 1];
  const zs = (series?.instances ?? []).map((i) => i.z).filter((z): z is number => z !== null);
  const steps = zs.slice(1).map((z, i) => Math.abs(z - zs[i]!)).filter((step) => step > 0).sort((a, b) => a - b);
  return { row: spacing[0], column: spacing[1], slice: steps[Math.floor(steps.length / 2)] ?? spacing[0] };
}

/** A step Ctrl+Z takes back (see `undo` below). */
type UndoStep = { kind: 'create' | 'delete'; label: Label } | { kind: 'update'; before: Label }
  | { kind: 'measurement'; change: MeasurementUndo };

/** The undo steps kept for this series by an earlier visit in this tab (none when unreadable). */
function storedUndoSteps(key: string): UndoStep[] {
  try {
    const steps: unknown = JSON.parse(sessionStorage.getItem(key) ?? '[]');
    return Array.isArray(steps) ? (steps as UndoStep[]) : [];
  } catch {
    return [];
  }
}

export async function mountViewerPage(container: HTMLElement, route: ViewerRoute): Promise<Page> {
  const timing = startViewerStats(route.seriesUid);
  // Clinicians see labels read-only; the labels API lets these roles write.
  let canLabel = ['annotator', 'expert', 'admin'].includes(route.me.role); // and the series takes labels
  const showLabels = route.me.role !== 'insurer';
  // Experts (and admins) also review: every label's history, relabelling with a reason, adjudication.
  const isExpert = ['expert', 'admin'].includes(route.me.role);
  const queueItemId = route.query.get('item');
  const adjudicateId = isExpert ? route.query.get('adjudicate') : null;
  const queueX = numberParam(route.query, 'x');
  const queueY = numberParam(route.query, 'y');
  const queueTarget: Point | null = queueX !== null && queueY !== null ? [queueX, queueY] : null;

  // ---- state ------------------------------------------------------------
  let series: SeriesDetail | null = null;
  let scores: SeriesScores | null = null;
  let labels: Label[] = [];
  let selectedId: Label['id'] | null = null;
  let pending: PendingMark | null = null;
  let hoverPixel: Point | null = null;
  let lastImagePoint: Point | null = null; // where the pointer last was on the image: the reformat passes there
  let dragPreview: { id: Label['id']; x: number; y: number } | null = null;
  let tool: PrimaryTool = 'annotate';
  let destroyed = false;
  // Not scored yet: asks again until the scores are there (loadScores plans each next round).
  const scorePoller = new Poller(async () => {
    if (series) series = { ...series, job: (await api.series(route.seriesUid)).job };
    if (!destroyed) await loadScores();
    return false;
  }, SCORE_POLL_MS);
  let workerChecked = false;
  let copyMove: CopyMoveCheck | null = null; // radiographs: what the copy-move check found
  let stopCopyMovePolling = (): void => undefined;

  /** A queued job with nothing consuming the queue waits for ever: say so (once per page). */
  async function warnIfNoWorker(bulk: boolean): Promise<void> {
    if (workerChecked) return;
    workerChecked = true;
    const workers = await api.scoringWorkers(bulk);
    if (workers === 0 && !destroyed && !scores) {
      scoreInfo.append(h('div', { className: 'error-text small', 'data-testid': 'no-worker' }, bulk
        ? 'This series waits on the bulk queue (re-scores after a new model) and no bulk worker is running: re-score it from the study page to score it now.'
        : 'No scoring worker is running: scoring starts when one does (celery -A portal worker).'));
    }
  }

  // ---- layout -----------------------------------------------------------
  const csElement = h('div', { className: 'cs-element', 'data-testid': 'cs-viewport' });
  const markers = new MarkerLayer();
  const heatmap = new HeatmapOverlay((slice) => api.heatmapUrl(route.seriesUid, slice), (slice) => thresholdAt(slice));
  const viewportStatus = h('div', { className: 'viewport-status', 'data-testid': 'viewer-status', 'aria-live': 'polite' }, 'Loading series…');
  const wrap = h('div', { className: 'viewport-wrap', 'data-testid': 'viewport', 'data-tool': tool, tabindex: '0', role: 'application', 'aria-roledescription': 'image viewer', 'aria-label': 'Image viewport: arrow keys scroll slices, 1–4 label, ? lists the keys' });
  const compare = new CompareOverlay();
  wrap.append(csElement, heatmap.canvas, compare.canvas, markers.root, viewportStatus);

  const slider = h('input', { type: 'range', min: '0', max: '0', value: '0', step: '1', 'aria-label': 'Slice', 'data-testid': 'slice-slider', disabled: true });
  const sliceText = h('span', { className: 'slice-index', 'data-testid': 'slice-index' }, 'Slice – / –');
  const zText = h('span', { className: 'slice-z', 'data-testid': 'slice-z' }, 'z –');
  const loadText = h('span', { className: 'load-progress muted', 'data-testid': 'load-progress' }, '');
  const probeText = h('span', { className: 'hu-probe', 'data-testid': 'hu-probe', 'aria-live': 'off' }, '');
  const compareText = h('span', { className: 'compare-status', 'data-testid': 'compare-status', 'aria-live': 'polite', hidden: true, title: 'Over the image: red where this study is denser than the copy, blue where it is less dense' }, '');
  const tamperStrip = h('canvas', { className: 'tamper-strip', height: '6', 'aria-hidden': 'true' });

  const toolButtons = new Map<PrimaryTool, HTMLButtonElement>();
  const toolDefs: [PrimaryTool, string, string][] = [['annotate', 'Annotate', 'A'], ['windowLevel', 'Window', 'W'], ['pan', 'Pan', 'P'], ['zoom', 'Zoom', 'Z'], ['measure', 'Measure', 'D']];
  const toolGroup = h('div', { className: 'btn-group', role: 'group', 'aria-label': 'Left mouse button' },
    toolDefs.map(([id, text, key]) => {
      const button = h('button', { type: 'button', className: 'btn btn-small', 'aria-pressed': String(id === tool), 'data-testid': `tool-${id}`, title: `${text} (${key})` }, text);
      button.addEventListener('click', () => setTool(id));
      toolButtons.set(id, button);
      return button;
    }));
  // CT windows in Hounsfield units; other images (radiographs) their own window or the full range.
  let presets: readonly WindowPreset[] = [];
  const presetGroup = h('div', { className: 'btn-group', role: 'group', 'aria-label': 'Window presets' });
  function showPresets(modality: string): void {
    presets = windowPresetsFor(modality);
    replaceChildren(presetGroup, ...presets.map((preset) => {
      const button = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': `preset-${preset.id}`, title: `${preset.label} (${preset.key.toUpperCase()})` }, preset.label);
      button.addEventListener('click', () => viewer?.applyPreset(preset));
      return button;
    }));
  }
  const resetButton = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'view-reset', title: 'Reset (R)' }, 'Reset');
  const zoomIn = h('button', { type: 'button', className: 'btn btn-small', 'aria-label': 'Zoom in', title: 'Zoom in (+)' }, '+');
  const zoomOut = h('button', { type: 'button', className: 'btn btn-small', 'aria-label': 'Zoom out', title: 'Zoom out (−)' }, '−');
  const helpButton = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'help-toggle', 'aria-expanded': 'false', title: 'Keyboard shortcuts (?)' }, '? Help');

  const seriesInfo = h('div', { className: 'series-info', 'data-testid': 'series-info' }, 'Loading…');
  const scoreInfo = h('div', { className: 'score-info', 'data-testid': 'score-info', 'aria-live': 'polite' }, 'Loading scores…');
  const overlayToggle = h('input', { type: 'checkbox', id: 'overlay-toggle', checked: true, disabled: true, 'data-testid': 'overlay-toggle' });
  const overlayOpacity = h('input', { type: 'range', id: 'overlay-opacity', min: '0', max: '100', value: '50', disabled: true, 'data-testid': 'overlay-opacity' });
  const overlayNote = h('span', { className: 'muted small', 'data-testid': 'overlay-note' }, '');
  const copyMoveToggle = h('input', { type: 'checkbox', id: 'copy-move-toggle', checked: true, 'data-testid': 'copy-move-toggle' });
  const locationNote = h('p', { className: 'muted small', 'data-testid': 'location-note' });
  const overlaySection = h('div', { className: 'side-section', 'data-testid': 'overlay-section' },
    h('h2', {}, 'Tamper overlay'),
    h('div', { className: 'inline-field' }, overlayToggle, h('label', { for: 'overlay-toggle' }, 'Show heatmap (H)')),
    h('div', { className: 'inline-field' }, h('label', { for: 'overlay-opacity' }, 'Opacity'), overlayOpacity),
    h('p', { className: 'muted small heatmap-legend', 'data-testid': 'heatmap-legend' },
      h('span', { className: 'swatch swatch-amber' }), ' below the flag threshold  ',
      h('span', { className: 'swatch swatch-red' }), ' at or above it (a finding)'),
    overlayNote);
  const locationList = h('ol', { className: 'location-list', 'data-testid': 'location-list' });
  const locationsSection = h('div', { className: 'side-section side-grow', 'data-testid': 'locations-section' },
    h('h2', {}, 'Most suspicious locations'), locationNote, locationList);
  const labelEditor = h('div', { className: 'label-editor', 'data-testid': 'label-editor' });
  const labelList = h('ul', { className: 'label-list', 'data-testid': 'label-list' });
  const labelError = h('p', { className: 'error-text', role: 'alert', 'data-testid': 'label-error' });
  const helpPanel = renderHelpPanel(() => toggleHelp(false));

  const queueStatus = h('p', { className: 'small', 'data-testid': 'queue-status', 'aria-live': 'polite' }, `Item ${queueItemId}: check the marked location and save a label.`);
  const queueNext = h('button', { type: 'button', className: 'btn btn-primary btn-small', 'data-testid': 'queue-next', title: 'Next uncertain item (Q)' }, 'Next uncertain item');
  queueNext.addEventListener('click', async () => {
    queueNext.disabled = true;
    try {
      if (!(await openNextQueueItem())) replaceChildren(labelError, 'The queue is empty.');
    } catch (error) {
      replaceChildren(labelError, `Could not get the next item: ${(error as Error).message}`);
    } finally {
      queueNext.disabled = false;
    }
  });
  const queueBox = queueItemId
    ? h('div', { className: 'side-section queue-box', 'data-testid': 'queue-box' }, h('h2', {}, 'Queue item'), queueStatus, queueNext)
    : null;

  const reformat = new ReformatPanel({
    imageIds: () => loadedImageIds,
    currentIndex: () => currentIndex(),
    crosshair: () => lastImagePoint ?? (series?.instances[0] ? [series.instances[0].columns / 2, series.instances[0].rows / 2] : null),
    voi: () => stackViewer.viewport.getProperties().voiRange ?? null,
    spacing: () => seriesSpacing(series),
    topIsLast: () => (instanceAt(series ? series.instances.length - 1 : 0)?.z ?? 0) > (instanceAt(0)?.z ?? 0),
    goToSlice: (index) => void stackViewer.goToSlice(index),
    findings: () => scores?.locations.filter(isFinding) ?? [],
  });
  let loadedImageIds: string[] = [];

  const rebuildBox = isExpert ? new QueueRebuildBox(route.seriesUid) : null;
  void rebuildBox?.load();

  const focusViewport = (): void => wrap.focus({ preventScroll: true });
  const review = isExpert && showLabels ? new LabelReview({
    labelsOnSlice: () => labelsOnSlice(currentIndex()),
    selectedId: () => selectedId,
    select: (id) => {
      pending = null;
      selectedId = id;
      renderLabels();
    },
    relabelled: (label) => {
      labels = labels.map((l) => (sameLabelId(l.id, label.id) ? { ...l, ...label } : l));
      renderLabels();
    },
    focusViewport,
  }) : null;
  const adjudication = adjudicateId ? new AdjudicationBox(adjudicateId, {
    decided: () => void reloadLabels(),
    focusViewport,
  }) : null;

  // Kept with the study for everyone who may read the series (insurers read claims, not series).
  const measurements = showLabels
    ? new SavedMeasurements(route.seriesUid, (index) => void viewer?.goToSlice(index).then(() => wrap.focus({ preventScroll: true })),
      (change) => remember({ kind: 'measurement', change }))
    : null;

  const labelsSection = showLabels ? h('div', { className: 'side-section side-grow labels-section', tabindex: '0', 'aria-label': 'Labels', 'data-testid': 'labels-section' },
    h('h2', {}, 'Labels'),
    labelEditor,
    labelError,
    labelList) : null;

  container.append(
    h('section', { className: 'viewer-page', 'data-testid': 'viewer' },
      h('div', { className: 'viewer-main' },
        h('div', { className: 'viewer-toolbar' }, toolGroup, presetGroup, h('div', { className: 'btn-group' }, zoomOut, zoomIn, resetButton), helpButton),
        wrap,
        h('div', { className: 'slice-bar' },
          h('div', { className: 'slider-stack' }, slider, tamperStrip),
          sliceText, zText, probeText, compareText, loadText)),
      h('aside', { className: 'viewer-side', 'aria-label': 'Series details' },
        h('div', { className: 'side-section' }, seriesInfo, scoreInfo),
        queueBox,
        adjudication?.element,
        overlaySection,
        locationsSection,
        reformat.element,
        labelsSection,
        measurements?.element,
        review?.element,
        rebuildBox?.element),
      helpPanel),
  );

  // ---- viewer -----------------------------------------------------------
  let viewer: StackViewer | null = null;
  try {
    viewer = new StackViewer(csElement);
  } catch (error) {
    viewportStatus.textContent = `This browser cannot display images: ${(error as Error).message}`;
    viewportStatus.classList.add('error');
    return { destroy: () => undefined };
  }
  const stackViewer = viewer;

  const currentIndex = (): number => stackViewer.currentIndex();
  const instanceAt = (index: number) => series?.instances.find((i) => i.slice_index === index) ?? series?.instances[index];
  const geometry = () => {
    const instance = instanceAt(currentIndex());
    return {
      rows: instance?.rows ?? 512,
      columns: instance?.columns ?? 512,
      pixelToCanvas: (p: Point) => stackViewer.pixelToCanvas(p),
    };
  };

  function setTool(next: PrimaryTool): void {
    tool = next;
    stackViewer.setPrimaryTool(next);
    wrap.dataset.tool = next;
    for (const [id, button] of toolButtons) button.setAttribute('aria-pressed', String(id === next));
  }

  function toggleHelp(show = helpPanel.hidden): void {
    helpPanel.hidden = !show;
    helpButton.setAttribute('aria-expanded', String(show));
    if (!show) wrap.focus();
  }

  // ---- drawing ----------------------------------------------------------
  function labelsOnSlice(index: number): Label[] {
    return labels
      .filter((label) => label.slice_index === index)
      .map((label) => (dragPreview && sameLabelId(dragPreview.id, label.id) ? moveLabel(label, dragPreview.x, dragPreview.y) : label));
  }

  function locationsOnSlice(index: number): LocationScore[] {
    return scores?.locations.filter((l) => l.slice_index === index) ?? [];
  }

  function redraw(): void {
    if (!series) return;
    const index = currentIndex();
    markers.render({
      labels: labelsOnSlice(index),
      selectedId,
      pending,
      locations: locationsOnSlice(index),
      flagThreshold: thresholdAt(index),
      queueTarget: queueTarget && numberParam(route.query, 'slice') === index ? queueTarget : null,
      copyMoves: copyMoveToggle.checked ? copyMove?.found.filter((image) => image.slice_index === index).flatMap((image) => image.regions) ?? [] : [],
      toCanvas: (p) => stackViewer.pixelToCanvas(p),
      onLabelPointerDown: startLabelDrag,
    });
    heatmap.draw(geometry());
    compare.draw(geometry());
  }

  function onSliceChanged(): void {
    if (!series) return;
    const index = currentIndex();
    const instance = instanceAt(index);
    slider.value = String(index);
    sliceText.textContent = `Slice ${index + 1} / ${series.instances.length}`;
    sliceText.dataset.sliceIndex = String(index);
    zText.textContent = instance?.z === null || instance?.z === undefined ? 'z –' : `z ${instance.z.toFixed(1)} mm`;
    updateQuery({ slice: index });
    if (pending && pending.slice !== index) pending = null;
    const selected = selectedLabel();
    if (selected && selected.slice_index !== index) selectedId = null;
    renderLabelEditor();
    review?.render();
    if (scores && overlayToggle.checked) void heatmap.showSlice(index, geometry()).then((found) => {
      overlayNote.textContent = found ? '' : 'No heatmap for this slice.';
    });
    else heatmap.clear();
    if (compare.active) showDifference(index);
    redraw();
  }

  // ---- radiographs: the copy-move check --------------------------------
  /** Its side section (what it found, each image a button) and the boxes over the image, both places joined. */
  function showCopyMoveCheck(shown: SeriesDetail): void {
    copyMove = shown.copy_move ?? null;
    const note = copyMoveNote(route.studyUid, shown, {
      onFinished: (check) => {
        copyMove = check;
        redraw();
      },
      goToSlice: (index) => void stackViewer.goToSlice(index),
      canReview: isExpert,
    });
    stopCopyMovePolling = note.destroy;
    copyMoveToggle.addEventListener('change', redraw);
    // The detector's heatmap and locations, and reformats of a stack, mean nothing for a few projections.
    for (const section of [overlaySection, locationsSection, reformat.element]) section.hidden = true;
    seriesInfo.parentElement?.after(h('div', { className: 'side-section', 'data-testid': 'viewer-copy-move' },
      h('h2', {}, 'Copy-move check'), note.element,
      h('div', { className: 'inline-field' }, copyMoveToggle, h('label', { for: 'copy-move-toggle' }, 'Show both places (H)'))));
  }

  /** TB/TM/FB/FM labels train the CT detector: a series of another modality takes none (the API refuses them). */
  function takesNoLabels(modality: string): void {
    canLabel = false;
    toolButtons.get('annotate')!.hidden = true; // nothing to annotate: the left button windows instead
    if (tool === 'annotate') setTool('windowLevel');
    for (const section of [review?.element, rebuildBox?.element]) if (section) section.hidden = true;
    if (labelsSection) {
      replaceChildren(labelsSection, h('h2', {}, 'Labels'), h('p', { className: 'muted small', 'data-testid': 'labels-not-here' },
        `TB/TM/FB/FM labels train the CT detector, so a ${modality} series takes none.`));
    }
  }

  // ---- comparison with a copy (another study holding the same images) ----
  let compareButton: HTMLButtonElement | null = null;
  let copyNote: HTMLElement | null = null;

  function showDifference(index: number): void {
    const imageId = loadedImageIds[index];
    if (!imageId) return;
    void compare.showSlice(index, imageId, geometry()).then((differing) => {
      if (currentIndex() !== index || !compare.active) return;
      compareText.textContent = differing === null ? 'Copy: no image at this place'
        : differing === 0 ? 'Copy: identical here'
          : `Copy differs in ${differing.toLocaleString('en')} pixels`;
    }, (error) => { compareText.textContent = `Copy: ${(error as Error).message}`; });
  }

  async function toggleCompare(copy: StudyCopy, button: HTMLButtonElement): Promise<void> {
    const wasThis = compare.active && compareButton === button;
    compare.stop();
    compareButton?.setAttribute('aria-pressed', 'false');
    compareButton = null;
    compareText.hidden = true;
    if (wasThis) return;
    try {
      await compare.start(route.seriesUid, copy.study_uid);
    } catch (error) {
      compareText.hidden = false;
      compareText.textContent = `Cannot compare: ${(error as Error).message}`;
      return;
    }
    compareButton = button;
    button.setAttribute('aria-pressed', 'true');
    compareText.hidden = false;
    compareText.textContent = `Comparing with the copy of ${copy.patient_id}…`;
    showDifference(currentIndex());
  }

  // ---- labels -----------------------------------------------------------
  const selectedLabel = (): Label | undefined => labels.find((l) => sameLabelId(l.id, selectedId));

  // Ctrl+Z takes back the person's own last label and measurement actions on this series, newest first: a new
  // label is deleted, a changed class or position is set back, a deleted label is restored (each a new version in
  // its history); a measurement drawn, moved or deleted likewise. The steps are data, kept in the tab's session
  // storage, so a reload does not lose them.
  const undoKey = `portal-undo:${route.me.username}:${route.seriesUid}`;
  const undoSteps: UndoStep[] = storedUndoSteps(undoKey);
  const keepUndoSteps = (): void => {
    try {
      sessionStorage.setItem(undoKey, JSON.stringify(undoSteps));
    } catch {
      // storage full or blocked: undo still works until the page is left
    }
  };
  const remember = (step: UndoStep): void => {
    undoSteps.push(step);
    if (undoSteps.length > 50) undoSteps.shift();
    keepUndoSteps();
  };

  async function undo(): Promise<void> {
    const step = undoSteps.pop();
    keepUndoSteps();
    if (!step) {
      replaceChildren(labelError, 'Nothing to undo.');
      return;
    }
    replaceChildren(labelError);
    if (step.kind === 'measurement') {
      try {
        const replaced = await measurements?.undo(step.change);
        if (replaced) { // saved again under a new id: older steps follow it
          for (const older of undoSteps) {
            if (older.kind === 'measurement' && older.change.record.id === replaced[0]) older.change.record = { ...older.change.record, id: replaced[1] };
          }
          keepUndoSteps();
        }
        void stackViewer.goToSlice(step.change.sliceIndex);
      } catch (error) {
        replaceChildren(labelError, `Could not undo the measurement: ${(error as Error).message}`);
      }
      return;
    }
    try {
      if (step.kind === 'create') {
        await api.deleteLabel(step.label.id);
        labels = labels.filter((l) => !sameLabelId(l.id, step.label.id));
        if (sameLabelId(selectedId, step.label.id)) selectedId = null;
      } else if (step.kind === 'delete') {
        const restored = await api.restoreLabel(step.label.id);
        labels = [...labels, { ...step.label, ...restored }];
      } else if (step.kind === 'update') {
        const { id, label_class, x, y, box } = step.before;
        const updated = await api.updateLabel(id, { label_class, x, y, box });
        labels = labels.map((l) => (sameLabelId(l.id, id) ? { ...l, ...updated } : l));
      }
      const undone = step.kind === 'update' ? step.before : step.label;
      if (step.kind !== 'create') void stackViewer.goToSlice(undone.slice_index);
    } catch (error) {
      showLabelError(error);
    }
    renderLabels();
  }

  function moveLabel(label: Label, x: number, y: number): Label {
    const dx = x - label.x;
    const dy = y - label.y;
    const box: Box | null = label.box ? [label.box[0] + dx, label.box[1] + dy, label.box[2] + dx, label.box[3] + dy] : null;
    return { ...label, x, y, box };
  }

  function showLabelError(error: unknown): void {
    const message = error instanceof ApiError && error.status === 403 ? 'You are not allowed to change this label.' : (error as Error).message;
    replaceChildren(labelError, `Could not save the label: ${message}`);
  }

  async function saveLabel(labelClass: LabelClass): Promise<void> {
    if (!series || !canLabel) return;
    replaceChildren(labelError);
    const selected = selectedLabel();
    if (selected && selected.is_mine && !pending) {
      try {
        const updated = await api.updateLabel(selected.id, { label_class: labelClass });
        if (updated.label_class !== selected.label_class) remember({ kind: 'update', before: selected });
        labels = labels.map((l) => (sameLabelId(l.id, updated.id) ? { ...l, ...updated } : l));
      } catch (error) {
        showLabelError(error);
      }
      renderLabels();
      return;
    }
    const index = currentIndex();
    const instance = instanceAt(index);
    if (!instance) return;
    const mark = pending ?? { ...placementPoint(), box: null, slice: index };
    const body = {
      series_uid: series.series_uid,
      sop_instance_uid: instance.sop_instance_uid,
      slice_index: index,
      x: Math.round(mark.x),
      y: Math.round(mark.y),
      box: mark.box ? (mark.box.map((v) => Math.round(v)) as Box) : null,
      label_class: labelClass,
      comment: commentDraft.trim(),
      ...(queueItemId ? { queue_item: queueItemId } : {}),
    };
    try {
      const created = await api.createLabel(body);
      // The API's answer wins; the defaults cover a minimal 201 body.
      const defaults = { study_uid: series.study_uid, annotator: route.me.username, created: new Date().toISOString(), is_mine: true };
      labels = [...labels, Object.assign(defaults, body, created)];
      remember({ kind: 'create', label: created });
      pending = null;
      commentDraft = '';
      selectedId = created.id;
      if (queueItemId) replaceChildren(queueStatus, `Item ${queueItemId}: saved as ${labelClass}. Press Q for the next item.`);
    } catch (error) {
      showLabelError(error);
    }
    renderLabels();
  }

  /** Where a keyboard-only label goes: under the mouse, else the queue target, else the image centre. */
  function placementPoint(): { x: number; y: number } {
    const instance = instanceAt(currentIndex());
    if (hoverPixel) return { x: hoverPixel[0], y: hoverPixel[1] };
    if (queueTarget && numberParam(route.query, 'slice') === currentIndex()) return { x: queueTarget[0], y: queueTarget[1] };
    return { x: (instance?.columns ?? 512) / 2, y: (instance?.rows ?? 512) / 2 };
  }

  async function deleteSelected(): Promise<void> {
    const selected = selectedLabel();
    if (!selected || !selected.is_mine) return;
    replaceChildren(labelError);
    try {
      await api.deleteLabel(selected.id);
      remember({ kind: 'delete', label: selected });
      labels = labels.filter((l) => l !== selected);
      selectedId = null;
    } catch (error) {
      showLabelError(error);
    }
    renderLabels();
  }

  async function saveComment(label: Label, comment: string): Promise<void> {
    try {
      const updated = await api.updateLabel(label.id, { comment });
      labels = labels.map((l) => (sameLabelId(l.id, label.id) ? { ...l, ...updated, comment } : l));
    } catch (error) {
      showLabelError(error);
    }
    renderLabels();
  }

  let commentDraft = '';

  function classButtons(onPick: (c: LabelClass) => void, current: LabelClass | null): HTMLElement {
    return h('div', { className: 'class-buttons', role: 'group', 'aria-label': 'Label class' },
      LABEL_CLASSES.map((c, i) => {
        const button = h('button', {
          type: 'button', className: `btn btn-small class-btn${c === current ? ' current' : ''}`,
          style: `--class-colour: ${CLASS_COLOURS[c]}`, title: `${LABEL_CLASS_NAMES[c]} (${i + 1})`,
          'data-testid': `label-class-${c}`, 'aria-pressed': String(c === current),
        }, `${i + 1} ${c}`);
        button.addEventListener('click', () => onPick(c));
        return button;
      }));
  }

  function renderLabelEditor(): void {
    if (!canLabel) {
      replaceChildren(labelEditor, h('p', { className: 'muted small' }, 'Labels are read-only for your role.'));
      return;
    }
    const selected = selectedLabel();
    if (pending) {
      const comment = h('input', { type: 'text', placeholder: 'Comment (optional)', value: commentDraft, 'aria-label': 'Comment', 'data-testid': 'label-comment' });
      comment.addEventListener('input', () => (commentDraft = comment.value));
      replaceChildren(labelEditor,
        h('p', { className: 'small' }, `New ${pending.box ? 'box' : 'point'} at (${Math.round(pending.x)}, ${Math.round(pending.y)}): choose a class (1–4).`),
        classButtons((c) => void saveLabel(c), null),
        comment);
    } else if (selected) {
      const parts: (HTMLElement | string)[] = [
        h('p', { className: 'small' }, `${selected.is_mine ? 'Your' : `${selected.annotator}'s`} ${selected.label_class} label at (${selected.x}, ${selected.y}), slice ${selected.slice_index + 1}`),
      ];
      if (selected.is_mine) {
        const comment = h('input', { type: 'text', value: selected.comment ?? '', placeholder: 'Comment', 'aria-label': 'Comment', 'data-testid': 'label-comment' });
        comment.addEventListener('change', () => void saveComment(selected, comment.value));
        const remove = h('button', { type: 'button', className: 'btn btn-small btn-danger', 'data-testid': 'label-delete' }, 'Delete');
        remove.addEventListener('click', () => void deleteSelected());
        parts.push(classButtons((c) => void saveLabel(c), selected.label_class), comment, remove);
      } else if (selected.comment) {
        parts.push(h('p', { className: 'small' }, `“${selected.comment}”`));
      }
      if (!selected.is_mine && review) {
        parts.push(h('p', { className: 'muted small', 'data-testid': 'relabel-hint' }, 'To change its class, press 1–4 and give a reason (Expert review below).'));
      }
      replaceChildren(labelEditor, parts);
    } else {
      replaceChildren(labelEditor, h('p', { className: 'muted small' }, 'Click the image to mark a point (drag for a box), then press 1–4.'));
    }
  }

  function renderLabels(): void {
    if (!showLabels) return redraw();
    const sorted = [...labels].sort((a, b) => a.slice_index - b.slice_index);
    replaceChildren(labelList, sorted.length === 0 ? h('li', { className: 'muted small', 'data-testid': 'labels-empty' }, 'No labels on this series yet.') :
      sorted.map((label) => {
        const button = h('button', {
          type: 'button',
          className: `label-item ${label.is_mine ? 'mine' : 'theirs'}${sameLabelId(label.id, selectedId) ? ' selected' : ''}`,
          'data-testid': 'label-item', 'data-label-class': label.label_class, 'data-slice-index': String(label.slice_index),
        },
        h('span', { className: 'swatch', style: `background: ${CLASS_COLOURS[label.label_class]}` }),
        `${label.label_class} · slice ${label.slice_index + 1} · (${label.x}, ${label.y})`,
        h('span', { className: 'muted small' }, label.is_mine ? ' · you' : ` · ${label.annotator}`));
        button.addEventListener('click', () => {
          pending = null;
          selectedId = label.id;
          void stackViewer.goToSlice(label.slice_index).then(() => {
            renderLabels();
          });
        });
        return h('li', {}, button);
      }));
    renderLabelEditor();
    review?.render();
    redraw();
  }

  async function reloadLabels(): Promise<void> {
    try {
      labels = await api.labels(route.seriesUid);
      renderLabels();
    } catch (error) {
      replaceChildren(labelError, `Could not load labels: ${(error as Error).message}`);
    }
  }

  function startLabelDrag(label: Label, event: PointerEvent): void {
    if (event.button !== 0) return;
    event.stopPropagation();
    event.preventDefault();
    pending = null;
    selectedId = label.id;
    const start = stackViewer.canvasToPixel(relativePoint(event));
    if (!start) return;
    const startClient = [event.clientX, event.clientY];
    let moved = false;
    const onMove = (move: PointerEvent): void => {
      if (!moved && Math.hypot(move.clientX - startClient[0]!, move.clientY - startClient[1]!) < DRAG_THRESHOLD_PX) return;
      moved = true;
      const now = stackViewer.canvasToPixel(relativePoint(move));
      if (now) {
        const [x, y] = clampToImage([label.x + now[0] - start[0], label.y + now[1] - start[1]]);
        dragPreview = { id: label.id, x, y };
      }
      redraw();
    };
    const onUp = async (): Promise<void> => {
      window.removeEventListener('pointermove', onMove);
      window.removeEventListener('pointerup', onUp);
      const preview = dragPreview;
      dragPreview = null;
      if (moved && preview) {
        const movedLabel = moveLabel(label, Math.round(preview.x), Math.round(preview.y));
        labels = labels.map((l) => (l === label ? movedLabel : l));
        renderLabels();
        try {
          await api.updateLabel(label.id, { x: movedLabel.x, y: movedLabel.y, box: movedLabel.box });
          remember({ kind: 'update', before: label });
        } catch (error) {
          labels = labels.map((l) => (l === movedLabel ? label : l));
          showLabelError(error);
        }
      }
      renderLabels();
    };
    window.addEventListener('pointermove', onMove);
    window.addEventListener('pointerup', onUp);
  }

  function relativePoint(event: MouseEvent): Point {
    const rect = csElement.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  /** Keep a point on the image: labels off the pixel grid would be meaningless. */
  function clampToImage(p: Point): Point {
    const g = geometry();
    return [Math.min(g.columns - 1, Math.max(0, p[0])), Math.min(g.rows - 1, Math.max(0, p[1]))];
  }

  function inImage(p: Point): boolean {
    const g = geometry();
    return p[0] >= -0.5 && p[1] >= -0.5 && p[0] <= g.columns - 0.5 && p[1] <= g.rows - 0.5;
  }

  // Annotate mode: click marks a point, drag marks a box.
  wrap.addEventListener('pointerdown', (event) => {
    wrap.focus({ preventScroll: true });
    if (event.button !== 0 || tool !== 'annotate' || !canLabel || !series) return;
    const startCanvas = relativePoint(event);
    const start = stackViewer.canvasToPixel(startCanvas);
    if (!start || !inImage(start)) return;
    const slice = currentIndex();
    let box: Box | null = null;
    const onMove = (move: PointerEvent): void => {
      const nowCanvas = relativePoint(move);
      if (Math.hypot(nowCanvas[0] - startCanvas[0], nowCanvas[1] - startCanvas[1]) < DRAG_THRESHOLD_PX) return;
      const raw = stackViewer.canvasToPixel(nowCanvas);
      if (!raw) return;
      const now = clampToImage(raw);
      box = [Math.min(start[0], now[0]), Math.min(start[1], now[1]), Math.max(start[0], now[0]), Math.max(start[1], now[1])];
      pending = { x: (box[0] + box[2]) / 2, y: (box[1] + box[3]) / 2, box, slice };
      redraw();
    };
    const onUp = (): void => {
      window.removeEventListener('pointermove', onMove);
      window.removeEventListener('pointerup', onUp);
      selectedId = null;
      pending = box ? { x: (box[0] + box[2]) / 2, y: (box[1] + box[3]) / 2, box, slice } : { x: start[0], y: start[1], box: null, slice };
      renderLabelEditor();
      redraw();
    };
    window.addEventListener('pointermove', onMove);
    window.addEventListener('pointerup', onUp);
  });
  wrap.addEventListener('pointermove', (event) => {
    const p = stackViewer.canvasToPixel(relativePoint(event));
    hoverPixel = p && inImage(p) ? p : null;
    showProbe(hoverPixel);
    if (hoverPixel) {
      lastImagePoint = hoverPixel;
      reformat.schedule();
    }
  });
  wrap.addEventListener('pointerleave', () => {
    hoverPixel = null;
    showProbe(null);
  });

  /** The value under the pointer: Hounsfield units on CT, so a reader can check what a patch is made of. */
  function showProbe(point: Point | null): void {
    const value = point ? valueAt(stackViewer.viewport.getCornerstoneImage(), point) : null;
    if (value === null || !point) {
      probeText.textContent = '';
      return;
    }
    const unit = series?.modality === 'CT' ? 'HU' : 'value';
    probeText.textContent = `${unit} ${Math.round(value)} at (${Math.floor(point[0])}, ${Math.floor(point[1])})`;
    probeText.dataset.value = String(value);
    probeText.dataset.x = String(Math.floor(point[0]));
    probeText.dataset.y = String(Math.floor(point[1]));
  }

  // ---- scores & overlay --------------------------------------------------
  // A location is a finding only at or above the model's series-calibrated threshold: a genuine scan has
  // thousands of locations, and its highest scores routinely look alarming without being findings.
  // Slices without a neighbour (the first, the last, both sides of a gap) have their own threshold when the
  // model has one; the API lists them (edge_slices).
  function thresholdAt(sliceIndex: number): number | null {
    if (!scores || scores.flag_threshold == null) return null;
    const edge = scores.edge_slices ? scores.edge_slices.includes(sliceIndex) : sliceIndex === 0 || sliceIndex === scores.slices.length - 1;
    return edge && scores.edge_flag_threshold != null ? scores.edge_flag_threshold : scores.flag_threshold;
  }
  function isFinding(location: LocationScore): boolean {
    const threshold = thresholdAt(location.slice_index);
    return threshold == null || location.tamper >= threshold;
  }

  function renderLocations(): void {
    if (!scores) return;
    const sorted = [...scores.locations].sort((a, b) => b.tamper - a.tamper);
    const threshold = scores.flag_threshold;
    locationNote.textContent = threshold == null || sorted.length === 0 ? ''
      : (scores.flagged_locations ?? 0) === 0
        ? `None reaches the flag threshold (${formatPercent(threshold, 1)}): listed for review, not findings.`
        : `Red: at or above the flag threshold (${formatPercent(threshold, 1)}).`;
    const empty = scores.verdict ? 'The model found no suspicious locations.' : 'No locations: no lung tissue to score.';
    replaceChildren(locationList, sorted.length === 0 ? h('li', { className: 'muted small', 'data-testid': 'locations-empty' }, empty) :
      sorted.map((location) => {
        const top = LABEL_CLASSES.reduce((best, c) => ((location.probs[c] ?? 0) > (location.probs[best] ?? 0) ? c : best), LABEL_CLASSES[0]!);
        const finding = isFinding(location);
        const button = h('button', { type: 'button', className: `location-item${finding ? ' finding' : ''}`, 'data-testid': 'location-item', 'data-slice-index': String(location.slice_index), 'data-finding': String(finding) },
          h('span', { className: 'tamper-score' }, formatPercent(location.tamper)),
          ` slice ${location.slice_index + 1} · (${Math.round(location.x)}, ${Math.round(location.y)}) · ${top}`);
        button.addEventListener('click', () => jumpToLocation(location));
        return h('li', {}, button);
      }));
  }

  function verdictSummary(result: SeriesScores): (HTMLElement | string)[] {
    const tampered = isTamperVerdict(result.verdict);
    const badge = verdictBadge(result.verdict, result.verdict_score, 'series-verdict', !result.verdict);
    if (!result.verdict) return [badge, ` ${NOTHING_TO_SCORE}`];
    const threshold = result.flag_threshold;
    const highest = Math.max(0, ...result.locations.map((l) => l.tamper));
    const detail = threshold == null
      ? ''
      : tampered
        ? ` ${LABEL_CLASS_NAMES[result.verdict]} · ${result.flagged_locations ?? 0} location(s) at or above the flag threshold ${formatPercent(threshold, 1)}`
        : ` no location reaches the flag threshold ${formatPercent(threshold, 1)} (highest ${formatPercent(highest, 1)})`;
    return [badge, detail];
  }

  function jumpToLocation(location: LocationScore): void {
    lastImagePoint = [location.x, location.y]; // the reformat passes through it
    reformat.schedule();
    void stackViewer.goToSlice(location.slice_index).then(() => {
      stackViewer.bringIntoView([location.x, location.y]);
      redraw();
    });
  }

  function jumpToNextLocation(step: 1 | -1): void {
    if (!scores || scores.locations.length === 0) return;
    const sorted = [...scores.locations].sort((a, b) => a.slice_index - b.slice_index || a.y - b.y);
    const index = currentIndex();
    const target = step === 1
      ? sorted.find((l) => l.slice_index > index) ?? sorted[0]
      : [...sorted].reverse().find((l) => l.slice_index < index) ?? sorted[sorted.length - 1];
    if (target) jumpToLocation(target);
  }

  function drawTamperStrip(): void {
    const count = series?.instances.length ?? 0;
    const ctx = tamperStrip.getContext('2d');
    tamperStrip.width = Math.max(1, count);
    if (!ctx || !scores) return;
    // Red: a finding on the slice (at the flag threshold). Below it, amber on the logit scale between 0.5
    // and the threshold: a genuine scan's slices mostly score 0.9+, which in plain alpha is a solid red bar.
    const threshold = scores.flag_threshold;
    const logit = (p: number): number => Math.log(Math.max(p, 1e-6) / Math.max(1 - p, 1e-6));
    ctx.clearRect(0, 0, tamperStrip.width, tamperStrip.height);
    for (const slice of scores.slices) {
      const v = Math.max(0, Math.min(1, slice.tamper));
      const at = thresholdAt(slice.slice_index) ?? threshold;
      if (at == null) ctx.fillStyle = `rgba(229, 57, 53, ${v.toFixed(2)})`;
      else if (v >= at) ctx.fillStyle = 'rgb(229, 57, 53)';
      else ctx.fillStyle = `rgba(255, 179, 0, ${(0.6 * Math.max(0, Math.min(1, logit(v) / logit(at)))).toFixed(2)})`;
      ctx.fillRect(slice.slice_index, 0, 1, 6);
    }
  }

  async function loadScores(): Promise<void> {
    try {
      scores = await api.scores(route.seriesUid);
    } catch (error) {
      replaceChildren(scoreInfo, h('span', { className: 'error-text' }, `Scores unavailable: ${(error as Error).message}`));
      return;
    }
    if (destroyed) return;
    if (!scores && series?.not_scored_reason) {
      replaceChildren(scoreInfo, h('span', { className: 'badge status-none', 'data-testid': 'score-status' }, 'Not scored'), ' ',
        h('span', { className: 'small', 'data-testid': 'not-scored-reason' }, series.not_scored_reason));
      overlayNote.textContent = 'No heatmap: the detector does not score this series.';
      replaceChildren(locationList, h('li', { className: 'muted small' }, 'No scores.'));
      return;
    }
    if (!scores) {
      const job = series?.job;
      const state = job ? `Scoring ${job.status}${job.status === 'failed' && 'error' in job && job.error ? `: ${job.error}` : ''}` : 'Not scored yet';
      replaceChildren(scoreInfo, h('span', { className: `badge status-${job?.status ?? 'none'}`, 'data-testid': 'score-status' }, state));
      if (job?.status === 'queued') void warnIfNoWorker('bulk' in job && job.bulk === true);
      overlayNote.textContent = 'The overlay appears when scoring has finished.';
      replaceChildren(locationList, h('li', { className: 'muted small' }, 'No scores yet.'));
      if (!job || job.status === 'queued' || job.status === 'running') {
        scorePoller.schedule();
      }
      return;
    }
    replaceChildren(scoreInfo,
      h('span', { className: 'badge status-done', 'data-testid': 'score-status' }, 'Scored'), ' ',
      ...verdictSummary(scores),
      h('div', { className: 'muted small' }, `model ${scores.model_version?.name ?? '?'}`));
    overlayToggle.disabled = false;
    overlayOpacity.disabled = false;
    overlayNote.textContent = '';
    heatmap.setOpacity(Number(overlayOpacity.value) / 100);
    renderLocations();
    drawTamperStrip();
    onSliceChanged();
    reformat.schedule(); // its finding rings
  }

  overlayToggle.addEventListener('change', () => {
    heatmap.visible = overlayToggle.checked;
    onSliceChanged();
  });
  overlayOpacity.addEventListener('input', () => heatmap.setOpacity(Number(overlayOpacity.value) / 100));

  // ---- keyboard ---------------------------------------------------------
  const onKeyDown = (event: KeyboardEvent): void => {
    if (isTypingTarget(event.target) || !series) return;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && event.key.toLowerCase() === 'z') {
      event.preventDefault();
      if (showLabels) void undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const index = currentIndex();
    const key = event.key;
    const preset = presets.find((p) => p.key === key.toLowerCase());
    let handled = true;
    if (key === 'ArrowUp' || key === 'ArrowLeft') void stackViewer.goToSlice(index - 1);
    else if (key === 'ArrowDown' || key === 'ArrowRight') void stackViewer.goToSlice(index + 1);
    else if (key === 'PageUp') void stackViewer.goToSlice(index - 10);
    else if (key === 'PageDown') void stackViewer.goToSlice(index + 10);
    else if (key === 'Home') void stackViewer.goToSlice(0);
    else if (key === 'End') void stackViewer.goToSlice(stackViewer.sliceCount - 1);
    else if (preset) stackViewer.applyPreset(preset);
    else if (key === 'r' || key === 'R') stackViewer.reset();
    else if (key === '+' || key === '=') stackViewer.zoomBy(1.25);
    else if (key === '-' || key === '_') stackViewer.zoomBy(0.8);
    else if ((key === 'a' || key === 'A') && !toolButtons.get('annotate')!.hidden) setTool('annotate');
    else if (key === 'w' || key === 'W') setTool('windowLevel');
    else if (key === 'p' || key === 'P') setTool('pan');
    else if (key === 'z' || key === 'Z') setTool('zoom');
    else if (key === 'd' || key === 'D') setTool('measure');
    else if (key === 'h' || key === 'H') {
      const toggle = overlayToggle.disabled ? (copyMove ? copyMoveToggle : null) : overlayToggle;
      if (toggle) {
        toggle.checked = !toggle.checked;
        toggle.dispatchEvent(new Event('change'));
      }
    } else if (key === 'n') jumpToNextLocation(1);
    else if (key === 'N') jumpToNextLocation(-1);
    else if (key === '?') toggleHelp();
    else if (key === 'c' || key === 'C') reformat.togglePlane();
    else if (key === 'x' || key === 'X') (compareButton ?? copyNote?.querySelector<HTMLButtonElement>('[data-testid=copy-compare]'))?.click();
    else if ((key === 'q' || key === 'Q') && queueBox) queueNext.click();
    else if (['1', '2', '3', '4'].includes(key) && !pending && adjudication?.isOpen()) adjudication.pickClass(LABEL_CLASSES[Number(key) - 1]!);
    else if (['1', '2', '3', '4'].includes(key) && !pending && review?.canPick()) review.pickClass(LABEL_CLASSES[Number(key) - 1]!);
    else if (['1', '2', '3', '4'].includes(key) && canLabel) void saveLabel(LABEL_CLASSES[Number(key) - 1]!);
    else if ((key === '[' || key === ']') && review) review.cycle(key === ']' ? 1 : -1);
    else if (key === 'Delete' || key === 'Backspace') {
      // Cornerstone keeps a measurement selected while labels are picked: Delete acts on what the tool works on.
      if (tool === 'measure') measurements?.deleteSelected();
      else void deleteSelected();
    }
    else if (key === 'Escape') {
      if (!helpPanel.hidden) toggleHelp(false);
      pending = null;
      selectedId = null;
      renderLabels();
    } else handled = false;
    if (handled) event.preventDefault();
  };
  document.addEventListener('keydown', onKeyDown);

  slider.addEventListener('input', () => void stackViewer.goToSlice(Number(slider.value)));
  resetButton.addEventListener('click', () => stackViewer.reset());
  zoomIn.addEventListener('click', () => stackViewer.zoomBy(1.25));
  zoomOut.addEventListener('click', () => stackViewer.zoomBy(0.8));
  helpButton.addEventListener('click', () => toggleHelp());

  stackViewer.on(CoreEnums.Events.STACK_NEW_IMAGE, onSliceChanged);
  stackViewer.on(CoreEnums.Events.VOI_MODIFIED, (event) => {
    const range = (event as CustomEvent<{ range?: { lower: number; upper: number } }>).detail.range;
    if (range) wrap.dataset.voi = `${Math.round(range.lower)},${Math.round(range.upper)}`; // what is shown, for tests
  });
  stackViewer.on(CoreEnums.Events.IMAGE_RENDERED, () => {
    timing.firstRender();
    redraw();
    reformat.schedule(); // a new slice or window
  });

  const destroy = (): void => {
    destroyed = true;
    document.removeEventListener('keydown', onKeyDown);
    scorePoller.stop();
    stopCopyMovePolling();
    measurements?.destroy();
    stackViewer.destroy();
  };

  // ---- load -------------------------------------------------------------
  try {
    series = await api.series(route.seriesUid);
    if (destroyed) return { destroy };
    if (series.instances.length === 0) throw new Error('This series has no images.');
    const imageIds = await prepareImageIds(series);
    loadedImageIds = imageIds;
    timing.stats.slices = imageIds.length;
    const startIndex = clampIndex(numberParam(route.query, 'slice') ?? Math.floor(imageIds.length / 2), imageIds.length);
    slider.max = String(imageIds.length - 1);
    slider.disabled = false;
    replaceChildren(seriesInfo,
      h('h1', { className: 'series-title' }, series.description || 'Series'),
      h('p', { className: 'muted small' }, `${series.modality} · ${countOf(series.instances.length, 'image')}`),
      h('p', { className: 'muted small uid', title: series.series_uid }, series.series_uid),
      sliceGapNote(series, (index) => void stackViewer.goToSlice(index)));
    showPresets(series.modality);
    if (series.copy_move) showCopyMoveCheck(series);
    if (series.labels_apply === false) takesNoLabels(series.modality);
    const slowNotice = window.setTimeout(() => {
      viewportStatus.textContent = 'Images are taking longer than usual to arrive from the image archive…';
    }, 8000);
    await stackViewer.showStack(imageIds, startIndex).finally(() => window.clearTimeout(slowNotice));
    viewportStatus.hidden = true;
    onSliceChanged();
    if (queueTarget && adjudication && startIndex === numberParam(route.query, 'slice')) {
      stackViewer.bringIntoView(queueTarget);  // adjudication: 1–4 decide, they do not label the target
    } else if (queueTarget && startIndex === numberParam(route.query, 'slice')) {
      // The queue item's location becomes the mark: 1–4 labels it straight away.
      pending = { x: queueTarget[0], y: queueTarget[1], box: null, slice: startIndex };
      stackViewer.bringIntoView(queueTarget);
      renderLabelEditor();
      redraw();
    }
    wrap.focus({ preventScroll: true });
    loadText.textContent = `Loading 0 / ${imageIds.length}`;
    void stackViewer.prefetchAll((progress) => {
      loadText.textContent = progress.loaded + progress.failed < progress.total
        ? `Loading ${progress.loaded} / ${progress.total}`
        : `All ${progress.loaded} slices loaded${progress.failed ? `, ${progress.failed} failed` : ''}`;
    }).then((progress) => {
      timing.allLoaded(progress.failed);
      loadText.dataset.complete = 'true';
      if (progress.failed === 0 && !destroyed) reformat.enable();
    });
  } catch (error) {
    const text = error instanceof ApiError && error.status === 404 ? 'This series does not exist or you cannot see it.' : `Could not load the series: ${(error as Error).message}`;
    viewportStatus.textContent = text;
    viewportStatus.classList.add('error');
    viewportStatus.hidden = false;
    return { destroy };
  }

  if (showLabels) void reloadLabels();
  const shown = series; // loaded above
  void measurements?.load(stackViewer, shown.instances.map((instance) => ({
    sop: instance.sop_instance_uid, imageId: imageIdFor(shown.study_uid, shown.series_uid, instance.sop_instance_uid),
  })));
  void adjudication?.load();
  void loadScores();
  if (route.me.role !== 'annotator') { // annotators read no provenance
    void copyDifferenceNote(route.studyUid, route.seriesUid, (index) => void stackViewer.goToSlice(index),
      (copy, button) => void toggleCompare(copy, button))
      .then((note) => (copyNote = note))
      .then((note) => note && !destroyed && seriesInfo.append(note), () => undefined); // a convenience: no error shown
  }
  return { destroy };
}
