import type { Point } from './stackViewer';

export interface ImageGeometry {
  rows: number;
  columns: number;
  /** Native pixel -> CSS pixel in the viewport element. */
  pixelToCanvas: (point: Point) => Point | null;
}

/**
 * Colour a tamper-probability tile (0..255 grey) as the claim report does: red where it reaches the slice's
 * flag threshold (a finding), amber below it, fainter the lower it is, so a genuine scan's moderate scores
 * (often 0.9+) do not paint the lungs red. No threshold (jobs scored before it was recorded): all amber.
 * The PNG truncates to 1/255 steps, so the red cut-off is the threshold's own step: no finding shows amber.
 */
export function colourise(grey: ImageData, threshold: number | null): ImageData {
  const out = new ImageData(grey.width, grey.height);
  const redFrom = threshold == null ? Infinity : Math.floor(threshold * 255);
  for (let i = 0; i < grey.data.length; i += 4) {
    const level = grey.data[i]!;
    const v = level / 255;
    const flagged = level >= redFrom;
    out.data[i] = 255;
    out.data[i + 1] = flagged ? 0 : 176;
    out.data[i + 2] = 0;
    // Low probabilities stay see-through so the anatomy remains readable.
    out.data[i + 3] = flagged ? Math.round(255 * Math.max(v, 0.6)) : v < 0.08 ? 0 : Math.round(255 * 0.6 * v);
  }
  return out;
}

/**
 * Draws the per-slice heatmap PNG, colourised, over the image. The PNG may be coarser
 * than the slice: it is stretched over the image's full extent.
 */
export class HeatmapOverlay {
  readonly canvas: HTMLCanvasElement;
  private readonly cache = new Map<number, Promise<HTMLCanvasElement | null>>();
  private current: HTMLCanvasElement | null = null;
  private currentSlice = -1;
  visible = true;

  constructor(
    private readonly urlFor: (slice: number) => string,
    private readonly thresholdFor: (slice: number) => number | null,
  ) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'heatmap-layer';
    this.canvas.dataset.testid = 'heatmap-layer';
  }

  setOpacity(opacity: number): void {
    this.canvas.style.opacity = String(opacity);
  }

  private load(slice: number): Promise<HTMLCanvasElement | null> {
    let pending = this.cache.get(slice);
    if (!pending) {
      pending = new Promise((resolve) => {
        const img = new Image();
        img.onload = () => {
          const tile = document.createElement('canvas');
          tile.width = img.naturalWidth;
          tile.height = img.naturalHeight;
          const ctx = tile.getContext('2d', { willReadFrequently: true });
          if (!ctx) return resolve(null);
          ctx.drawImage(img, 0, 0);
          ctx.putImageData(colourise(ctx.getImageData(0, 0, tile.width, tile.height), this.thresholdFor(slice)), 0, 0);
          resolve(tile);
        };
        img.onerror = () => resolve(null);
        img.src = this.urlFor(slice);
      });
      this.cache.set(slice, pending);
    }
    return pending;
  }

  /** Show the heatmap for a slice; resolves to whether one exists. */
  async showSlice(slice: number, geometry: ImageGeometry): Promise<boolean> {
    this.currentSlice = slice;
    const tile = await this.load(slice);
    if (this.currentSlice !== slice) return tile !== null;
    this.current = tile;
    this.draw(geometry);
    return tile !== null;
  }

  clear(): void {
    this.current = null;
    this.currentSlice = -1;
    const ctx = this.canvas.getContext('2d');
    ctx?.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** Redraw after zoom, pan or resize. */
  draw(geometry: ImageGeometry): void {
    drawOverImage(this.canvas, this.visible ? this.current : null, geometry);
  }
}

/** Draw an image-sized tile over the image on screen (after zoom, pan or resize too); null clears the layer. */
export function drawOverImage(canvas: HTMLCanvasElement, tile: HTMLCanvasElement | null, geometry: ImageGeometry): void {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!tile) return;
  // Pixel centres sit on integer coordinates, so the image spans -0.5 .. n-0.5.
  const topLeft = geometry.pixelToCanvas([-0.5, -0.5]);
  const bottomRight = geometry.pixelToCanvas([geometry.columns - 0.5, geometry.rows - 0.5]);
  if (!topLeft || !bottomRight) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tile, topLeft[0], topLeft[1], bottomRight[0] - topLeft[0], bottomRight[1] - topLeft[1]);
}
