import { h } from '../dom';
import { buildReformat, type Plane } from './reformat';
import type { Point } from './stackViewer';

const MAX_HEIGHT_PX = 320;

export interface ReformatSource {
  imageIds: () => string[];
  currentIndex: () => number;
  /** The axial point the reformat passes through: the pointer on the image, else the last one, else the centre. */
  crosshair: () => Point | null;
  voi: () => { lower: number; upper: number } | null;
  /** Physical size of a column, a row and the slice step, in mm, for the aspect ratio. */
  spacing: () => { column: number; row: number; slice: number };
  topIsLast: () => boolean;
  goToSlice: (index: number) => void;
  /** Findings (slice, x, y) to mark where they lie within `FINDING_BAND_PX` of the reformat's plane. */
  findings: () => { slice_index: number; x: number; y: number }[];
}

const FINDING_BAND_PX = 24;

/**
 * Coronal or sagittal reformat of the stack through the pointer's position (C switches): an injected or
 * removed nodule is drawn slice by slice, and across slices it shows as a cube-shaped patch or a break in
 * vessels. The cyan line is the slice on screen; red rings are findings near the plane; a click opens the
 * slice of that row.
 */
export class ReformatPanel {
  readonly element: HTMLElement;
  private readonly canvas = h('canvas', { className: 'reformat-canvas', 'data-testid': 'reformat-canvas', role: 'img', 'aria-label': 'Reformat of the stack: click a row to open that slice', hidden: true });
  private readonly note = h('p', { className: 'muted small', 'data-testid': 'reformat-note' }, 'Shown once every slice is loaded.');
  private readonly buttons = new Map<Plane, HTMLButtonElement>();
  private plane: Plane = 'coronal';
  private ready = false;
  private frame = 0;
  private sliceAt: ((row: number) => number) | null = null;

  constructor(private readonly source: ReformatSource) {
    const group = h('div', { className: 'btn-group', role: 'group', 'aria-label': 'Reformat plane' },
      (['coronal', 'sagittal'] as const).map((plane) => {
        const button = h('button', { type: 'button', className: 'btn btn-small', 'aria-pressed': String(plane === this.plane), 'data-testid': `reformat-${plane}`, title: 'Switch plane (C)' },
          plane === 'coronal' ? 'Coronal' : 'Sagittal');
        button.addEventListener('click', () => this.setPlane(plane));
        this.buttons.set(plane, button);
        return button;
      }));
    this.element = h('div', { className: 'side-section reformat-section', 'data-testid': 'reformat' },
      h('h2', {}, 'Reformat'), group, this.canvas, this.note);
    this.canvas.addEventListener('click', (event) => {
      if (!this.sliceAt) return;
      const box = this.canvas.getBoundingClientRect();
      const rows = this.source.imageIds().length;
      this.source.goToSlice(this.sliceAt(Math.floor(((event.clientY - box.top) / box.height) * rows)));
    });
  }

  /** Every slice is in the cache: draw from now on. */
  enable(): void {
    this.ready = true;
    this.canvas.hidden = false;
    this.note.textContent = 'Through the pointer\'s last position on the image (or the suspicious location opened). Red rings: findings near it. Click to open that slice.';
    this.schedule();
  }

  togglePlane(): void {
    this.setPlane(this.plane === 'coronal' ? 'sagittal' : 'coronal');
  }

  setPlane(plane: Plane): void {
    this.plane = plane;
    for (const [id, button] of this.buttons) button.setAttribute('aria-pressed', String(id === plane));
    this.schedule();
  }

  /** Redraw on the next frame (pointer moves and renders come faster than frames). */
  schedule(): void {
    if (!this.ready || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const started = performance.now();
    this.paint();
    performance.measure('reformat-draw', { start: started }); // User Timing: read by benchmarks, not shown
  }

  private paint(): void {
    const imageIds = this.source.imageIds();
    const voi = this.source.voi();
    const point = this.source.crosshair();
    if (!voi || !point || imageIds.length === 0) return;
    const coronal = this.plane === 'coronal';
    const image = buildReformat(imageIds, this.plane, coronal ? point[1] : point[0], voi, this.source.topIsLast());
    if (!image) return;
    this.sliceAt = image.sliceAt;
    const spacing = this.source.spacing();
    const widthMm = image.data.width * (coronal ? spacing.column : spacing.row);
    const heightMm = image.data.height * spacing.slice;
    const cssWidth = Math.max(1, this.element.clientWidth - 24);
    const cssHeight = Math.min(MAX_HEIGHT_PX, Math.max(40, (cssWidth * heightMm) / widthMm));
    const scale = window.devicePixelRatio || 1;
    this.canvas.style.width = `${cssWidth}px`;
    this.canvas.style.height = `${cssHeight}px`;
    this.canvas.width = Math.round(cssWidth * scale);
    this.canvas.height = Math.round(cssHeight * scale);
    this.canvas.dataset.plane = this.plane;
    this.canvas.dataset.at = String(Math.floor(coronal ? point[1] : point[0]));
    this.canvas.dataset.slices = String(image.data.height);
    const native = document.createElement('canvas');
    native.width = image.data.width;
    native.height = image.data.height;
    native.getContext('2d')!.putImageData(image.data, 0, 0);
    const context = this.canvas.getContext('2d')!;
    context.imageSmoothingEnabled = true;
    context.drawImage(native, 0, 0, this.canvas.width, this.canvas.height);
    // The slice on screen (cyan) and where the pointer is along the other axis (amber).
    const rowHeight = this.canvas.height / image.data.height;
    const y = (image.rowOf(this.source.currentIndex()) + 0.5) * rowHeight;
    const x = ((coronal ? point[0] : point[1]) / image.data.width) * this.canvas.width;
    context.lineWidth = scale;
    context.strokeStyle = '#00e5ff';
    context.beginPath();
    context.moveTo(0, y);
    context.lineTo(this.canvas.width, y);
    context.stroke();
    context.strokeStyle = 'rgba(255, 179, 0, 0.8)';
    context.setLineDash([4 * scale, 4 * scale]);
    context.beginPath();
    context.moveTo(x, 0);
    context.lineTo(x, this.canvas.height);
    context.stroke();
    // Findings near the plane (red rings): how far a suspicious patch reaches along the scan.
    const fixed = coronal ? point[1] : point[0];
    const near = this.source.findings().filter((f) => Math.abs((coronal ? f.y : f.x) - fixed) <= FINDING_BAND_PX);
    context.setLineDash([]);
    context.strokeStyle = '#ff5252';
    context.lineWidth = 1.5 * scale;
    for (const finding of near) {
      const cx = ((coronal ? finding.x : finding.y) / image.data.width) * this.canvas.width;
      const cy = (image.rowOf(finding.slice_index) + 0.5) * rowHeight;
      context.beginPath();
      context.arc(cx, cy, Math.max(4 * scale, rowHeight), 0, 2 * Math.PI);
      context.stroke();
    }
    this.canvas.dataset.findings = String(near.length);
  }
}
