import { eventTarget, utilities, type Types } from '@cornerstonejs/core';
import { annotation, Enums as ToolEnums, LengthTool, type Types as ToolTypes } from '@cornerstonejs/tools';
import { api, ApiError } from '../api';
import { h, replaceChildren } from '../dom';
import type { Measurement } from '../types';
import type { StackViewer } from './stackViewer';

const SAVE_AFTER_MOVE_MS = 400; // a drag fires many changes: save once it rests
const UID_PREFIX = 'measurement-';

export type Points = [number, number][];

/** A change to a measurement that Ctrl+Z can take back, as data (kept across a reload): drawn (undo removes
 * it), moved (undo puts its end points back to `points`) or deleted (undo saves and draws it again). */
export interface MeasurementUndo {
  sliceIndex: number;
  action: 'drawn' | 'moved' | 'deleted';
  /** The saved record it concerns (a deleted one as it was). */
  record: Measurement;
  points?: Points;
}

/**
 * Distances drawn with the measure tool (Cornerstone's LengthTool) are kept with the study: each one drawn is
 * saved, a moved end point is saved again, and the series' measurements, everyone's, come back when it is
 * reopened. Other readers' measurements are shown locked. The side list jumps to a measurement's slice and
 * deletes one's own; Delete (with the measure tool on) removes the selected one. Each of the reader's own
 * changes (drawn, moved, deleted) is handed to `remember` so that Ctrl+Z can take it back.
 */
export class SavedMeasurements {
  readonly element: HTMLElement;
  private readonly list = h('ul', { className: 'label-list', 'data-testid': 'measurement-list' });
  private readonly error = h('div', { className: 'error-text small', role: 'alert' });
  private readonly saved = new Map<string, Measurement>(); // annotation UID -> its record
  private readonly pendingMoves = new Map<string, number>();
  private imageIdBySop = new Map<string, string>();
  private sopByImageId = new Map<string, string>();
  private viewer: StackViewer | null = null;

  constructor(private readonly seriesUid: string, private readonly goToSlice: (index: number) => void,
              private readonly remember: (change: MeasurementUndo) => void = () => undefined) {
    this.element = h('div', { className: 'side-section', 'data-testid': 'measurements' },
      h('h2', {}, 'Measurements'),
      h('p', { className: 'muted small' }, 'Measure (D) draws a distance; it is saved with the study for everyone who reads it.'),
      this.error, this.list);
  }

  /** Once the series is on screen: show its saved measurements and save the ones drawn from now on. */
  async load(viewer: StackViewer, images: { sop: string; imageId: string }[]): Promise<void> {
    this.viewer = viewer;
    this.imageIdBySop = new Map(images.map(({ sop, imageId }) => [sop, imageId]));
    this.sopByImageId = new Map(images.map(({ sop, imageId }) => [imageId, sop]));
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, this.onCompleted);
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, this.onModified);
    try {
      for (const record of await api.measurements(this.seriesUid)) this.show(record);
    } catch (error) {
      replaceChildren(this.error, `Could not load measurements: ${(error as Error).message}`);
    }
    this.render();
  }

  /** Delete the selected measurement, if one is selected and it is the reader's own. */
  deleteSelected(): void {
    const selected = annotation.selection.getAnnotationsSelectedByToolName(LengthTool.toolName) ?? [];
    const uid = selected.find((id) => this.saved.get(id)?.is_mine);
    if (uid) void this.removeAndRemember(uid);
  }

  destroy(): void {
    eventTarget.removeEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, this.onCompleted);
    eventTarget.removeEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, this.onModified);
    for (const timer of this.pendingMoves.values()) window.clearTimeout(timer);
    // The annotation state outlives the viewport: without this a reopened series would show them twice.
    for (const drawn of this.ours()) if (drawn.annotationUID) annotation.state.removeAnnotation(drawn.annotationUID);
  }

  private ours(): ToolTypes.Annotations {
    if (!this.viewer) return [];
    return (annotation.state.getAnnotations(LengthTool.toolName, this.viewer.element) ?? [])
      .filter((drawn) => this.sopByImageId.has(drawn.metadata?.referencedImageId ?? ''));
  }

  /** Draw a saved measurement on its slice (Cornerstone keeps it with that image); returns its annotation UID. */
  private show(record: Measurement): string {
    const uid = `${UID_PREFIX}${record.id}`;
    const imageId = this.imageIdBySop.get(record.sop_instance_uid);
    if (!imageId || !this.viewer) return uid;
    const world = record.points.map((point) => utilities.imageToWorldCoords(imageId, point));
    if (world.some((point) => !point)) return uid;
    LengthTool.hydrate(this.viewer.viewport.id, world as Types.Point3[], { annotationUID: uid, referencedImageId: imageId });
    if (!record.is_mine) annotation.locking.setAnnotationLocked(uid, true);
    this.saved.set(uid, record);
    return uid;
  }

  private pointsOf(drawn: ToolTypes.Annotation): Points | null {
    const imageId = drawn.metadata?.referencedImageId ?? '';
    const points = drawn.data.handles?.points ?? [];
    if (!this.sopByImageId.has(imageId) || points.length !== 2) return null;
    const image = points.map((point) => utilities.worldToImageCoords(imageId, point));
    return image.every(Boolean) ? image.map((p) => [p![0], p![1]] as [number, number]) : null;
  }

  private onCompleted = (event: Event): void => {
    const drawn = (event as CustomEvent<{ annotation: ToolTypes.Annotation }>).detail.annotation;
    if (drawn.metadata?.toolName !== LengthTool.toolName || !drawn.annotationUID) return;
    const points = this.pointsOf(drawn);
    const sop = this.sopByImageId.get(drawn.metadata?.referencedImageId ?? '');
    if (!points || !sop) return;
    const uid = drawn.annotationUID;
    api.createMeasurement(this.seriesUid, sop, points).then((record) => {
      this.saved.set(uid, record);
      replaceChildren(this.error);
      this.render();
      this.remember({ sliceIndex: record.slice_index, action: 'drawn', record });
    }, (error) => {
      annotation.state.removeAnnotation(uid); // not kept: do not leave it looking saved
      this.viewer?.viewport.render();
      this.fail('The measurement was not saved', error);
    });
  };

  private onModified = (event: Event): void => {
    const { annotation: drawn, changeType } = (event as CustomEvent<{ annotation: ToolTypes.Annotation; changeType?: string }>).detail;
    const uid = drawn.annotationUID ?? '';
    if (changeType !== ToolEnums.ChangeTypes.HandlesUpdated || !this.saved.get(uid)?.is_mine) return;
    window.clearTimeout(this.pendingMoves.get(uid));
    this.pendingMoves.set(uid, window.setTimeout(() => {
      this.pendingMoves.delete(uid);
      const record = this.saved.get(uid);
      const points = this.pointsOf(drawn);
      if (!record || !points) return;
      api.moveMeasurement(record.id, points).then((moved) => {
        this.saved.set(uid, moved);
        this.render();
        this.remember({ sliceIndex: moved.slice_index, action: 'moved', record: moved, points: record.points });
      }, (error) => this.fail('The moved measurement was not saved', error));
    }, SAVE_AFTER_MOVE_MS));
  };

  /** The reader deletes one of theirs (list button, Delete key); Ctrl+Z draws it again. */
  private async removeAndRemember(uid: string): Promise<void> {
    const record = this.saved.get(uid);
    if (!record) return;
    try {
      await this.remove(uid);
    } catch (error) {
      return this.fail('Could not delete the measurement', error);
    }
    this.remember({ sliceIndex: record.slice_index, action: 'deleted', record });
  }

  /**
   * Take a change back. Undoing a delete saves the measurement again under a new id: the answer is
   * [old id, new id], for older changes that name it.
   */
  async undo(change: MeasurementUndo): Promise<[number, number] | null> {
    if (change.action === 'deleted') {
      const { sop_instance_uid: sop, points } = change.record;
      const again = await api.createMeasurement(this.seriesUid, sop, points);
      this.show(again);
      this.refresh();
      return [change.record.id, again.id];
    }
    const uid = this.uidOf(change.record.id);
    if (!uid) throw new Error('it is no longer there');
    if (change.action === 'drawn') await this.remove(uid);
    else await this.moveBack(uid, change.points ?? change.record.points);
    return null;
  }

  /** The annotation UID a saved measurement is drawn under (Cornerstone's own for one drawn in this visit). */
  private uidOf(id: number): string | undefined {
    for (const [uid, record] of this.saved) if (record.id === id) return uid;
    return undefined;
  }

  private async remove(uid: string): Promise<void> {
    const record = this.saved.get(uid);
    if (!record) return;
    try {
      await api.deleteMeasurement(record.id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    this.saved.delete(uid);
    annotation.state.removeAnnotation(uid);
    this.refresh();
  }

  /** Undo of a move: the end points back where they were saved before. */
  private async moveBack(uid: string, points: Points): Promise<void> {
    const record = this.saved.get(uid);
    if (!record) return;
    const moved = await api.moveMeasurement(record.id, points);
    annotation.state.removeAnnotation(uid);
    this.saved.delete(uid);
    this.show(moved);
    this.refresh();
  }

  private refresh(): void {
    this.viewer?.viewport.render();
    this.render();
  }

  private fail(what: string, error: unknown): void {
    replaceChildren(this.error, `${what}: ${(error as Error).message}`);
  }

  private render(): void {
    const records = [...this.saved.entries()].sort(([, a], [, b]) => a.slice_index - b.slice_index || a.id - b.id);
    replaceChildren(this.list, records.length === 0
      ? h('li', { className: 'muted small', 'data-testid': 'measurements-empty' }, 'No measurements on this series.')
      : records.map(([uid, record]) => {
        const open = h('button', { type: 'button', className: 'label-item', 'data-testid': 'measurement-item', 'data-slice-index': String(record.slice_index) },
          `slice ${record.slice_index + 1} · ${record.length_mm === null ? 'no pixel spacing' : `${record.length_mm.toFixed(1)} mm`}`,
          h('span', { className: 'muted small' }, record.is_mine ? ' · you' : ` · ${record.author}`));
        open.addEventListener('click', () => this.goToSlice(record.slice_index));
        if (!record.is_mine) return h('li', {}, open);
        const remove = h('button', { type: 'button', className: 'btn btn-small', 'data-testid': 'measurement-delete', 'aria-label': `Delete the measurement on slice ${record.slice_index + 1}` }, '×');
        remove.addEventListener('click', () => void this.removeAndRemember(uid));
        return h('li', { className: 'measurement-row' }, open, remove);
      }));
  }
}
