import { sameLabelId, type Box, type CopyMoveRegion, type Label, type LabelClass, type LocationScore, type PixelBox } from '../types';
import type { Point } from './stackViewer';

const SVG_NS = 'http://www.w3.org/2000/svg';

export interface PendingMark {
  x: number;
  y: number;
  box: Box | null;
  slice: number;
}

export interface MarkerScene {
  labels: Label[];
  selectedId: Label['id'] | null;
  pending: PendingMark | null;
  locations: LocationScore[];
  /** Locations at or above it are findings (red); below it, review candidates (amber). Null: all red. */
  flagThreshold: number | null;
  queueTarget: Point | null;
  /** Radiographs: regions of this image found at two places by the copy-move check. */
  copyMoves: CopyMoveRegion[];
  toCanvas: (point: Point) => Point | null;
  onLabelPointerDown: (label: Label, event: PointerEvent) => void;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

export const CLASS_COLOURS: Record<LabelClass, string> = {
  TB: '#43a047',
  TM: '#1e88e5',
  FB: '#fb8c00',
  FM: '#e53935',
};

/** SVG layer over the viewport with labels, the pending mark, model locations and the queue target. */
export class MarkerLayer {
  readonly root: SVGSVGElement;

  constructor() {
    this.root = svg('svg', { class: 'marker-layer', 'data-testid': 'marker-layer' });
  }

  render(scene: MarkerScene): void {
    this.root.replaceChildren();
    for (const region of scene.copyMoves) this.drawCopyMove(region, scene);
    for (const location of scene.locations) this.drawLocation(location, scene);
    if (scene.queueTarget) this.drawQueueTarget(scene.queueTarget, scene);
    for (const label of scene.labels) this.drawLabel(label, scene);
    if (scene.pending) this.drawPending(scene.pending, scene);
  }

  private boxRect(box: Box, scene: MarkerScene): SVGRectElement | null {
    const a = scene.toCanvas([box[0], box[1]]);
    const b = scene.toCanvas([box[2], box[3]]);
    if (!a || !b) return null;
    return svg('rect', {
      x: Math.min(a[0], b[0]), y: Math.min(a[1], b[1]),
      width: Math.abs(b[0] - a[0]), height: Math.abs(b[1] - a[1]),
    });
  }

  private drawLabel(label: Label, scene: MarkerScene): void {
    const centre = scene.toCanvas([label.x, label.y]);
    if (!centre) return;
    const colour = CLASS_COLOURS[label.label_class] ?? '#fff';
    const selected = sameLabelId(scene.selectedId, label.id);
    const group = svg('g', {
      class: `label-marker ${label.is_mine ? 'mine' : 'theirs'}${selected ? ' selected' : ''}`,
      'data-testid': 'label-marker',
      'data-label-id': String(label.id),
      'data-label-class': label.label_class,
    });
    if (label.box) {
      const rect = this.boxRect(label.box, scene);
      if (rect) {
        rect.setAttribute('stroke', colour);
        rect.setAttribute('class', 'label-box');
        group.append(rect);
      }
    }
    // Others' labels: hollow dashed diamond; mine: filled circle.
    const shape = label.is_mine
      ? svg('circle', { cx: centre[0], cy: centre[1], r: selected ? 8 : 6, fill: colour, stroke: '#fff', 'stroke-width': 2 })
      : svg('path', {
          d: `M ${centre[0]} ${centre[1] - 8} L ${centre[0] + 8} ${centre[1]} L ${centre[0]} ${centre[1] + 8} L ${centre[0] - 8} ${centre[1]} Z`,
          fill: 'none', stroke: colour, 'stroke-width': 2, 'stroke-dasharray': '3 2',
        });
    const text = svg('text', { x: centre[0] + 11, y: centre[1] + 4, fill: colour, class: 'label-text' });
    text.textContent = label.is_mine ? label.label_class : `${label.label_class} · ${label.annotator}`;
    const title = svg('title', {});
    title.textContent = `${label.label_class} by ${label.annotator}${label.comment ? `: ${label.comment}` : ''}`;
    group.append(shape, text, title);
    if (label.is_mine) group.addEventListener('pointerdown', (event) => scene.onLabelPointerDown(label, event));
    else group.classList.add('readonly');
    this.root.append(group);
  }

  private drawPending(pending: PendingMark, scene: MarkerScene): void {
    const centre = scene.toCanvas([pending.x, pending.y]);
    if (!centre) return;
    const group = svg('g', { class: 'pending-marker', 'data-testid': 'pending-marker' });
    if (pending.box) {
      const rect = this.boxRect(pending.box, scene);
      if (rect) group.append(rect);
    }
    group.append(
      svg('line', { x1: centre[0] - 10, y1: centre[1], x2: centre[0] + 10, y2: centre[1] }),
      svg('line', { x1: centre[0], y1: centre[1] - 10, x2: centre[0], y2: centre[1] + 10 }),
    );
    this.root.append(group);
  }

  private drawLocation(location: LocationScore, scene: MarkerScene): void {
    const centre = scene.toCanvas([location.x, location.y]);
    if (!centre) return;
    const finding = scene.flagThreshold == null || location.tamper >= scene.flagThreshold;
    const ring = svg('circle', { cx: centre[0], cy: centre[1], r: 16, class: `location-marker ${finding ? 'finding' : 'review'}`, 'data-testid': 'location-marker' });
    this.root.append(ring);
  }

  /** Both places of a copied region, joined: which of the two is the original the check cannot tell. */
  private drawCopyMove(region: CopyMoveRegion, scene: MarkerScene): void {
    const corners = ([x, y, w, h]: PixelBox): Box => [x, y, x + w, y + h];
    const centre = ([x, y, w, h]: PixelBox): Point | null => scene.toCanvas([x + w / 2, y + h / 2]);
    const first = this.boxRect(corners(region.first), scene);
    const second = this.boxRect(corners(region.second), scene);
    const [a, b] = [centre(region.first), centre(region.second)];
    if (!first || !second || !a || !b) return;
    const group = svg('g', { class: 'copy-move-marker', 'data-testid': 'copy-move-box' });
    const title = svg('title', {});
    title.textContent = `The same content at both boxes (${region.first[2]}×${region.first[3]} px): one was copied onto the other`;
    group.append(first, second, svg('line', { x1: a[0], y1: a[1], x2: b[0], y2: b[1] }), title);
    this.root.append(group);
  }

  private drawQueueTarget(point: Point, scene: MarkerScene): void {
    const centre = scene.toCanvas(point);
    if (!centre) return;
    const group = svg('g', { class: 'queue-target', 'data-testid': 'queue-target' });
    group.append(svg('circle', { cx: centre[0], cy: centre[1], r: 22 }), svg('circle', { cx: centre[0], cy: centre[1], r: 2 }));
    this.root.append(group);
  }
}
