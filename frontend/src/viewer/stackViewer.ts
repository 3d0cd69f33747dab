import {
  Enums, imageLoader, RenderingEngine, utilities, type StackViewport, type Types,
} from '@cornerstonejs/core';
import {
  Enums as ToolEnums, LengthTool, PanTool, StackScrollTool, ToolGroupManager, WindowLevelTool, ZoomTool,
} from '@cornerstonejs/tools';
import { initCornerstoneOnce } from './cornerstoneSetup';
import type { WindowPreset } from './windowPresets';

export type PrimaryTool = 'annotate' | 'windowLevel' | 'pan' | 'zoom' | 'measure';
export type Point = [number, number];

const { MouseBindings } = ToolEnums;
let instanceCount = 0;

export interface LoadProgress {
  loaded: number;
  failed: number;
  total: number;
}

/**
 * One Cornerstone stack viewport plus its tool group. Pixel coordinates here are the
 * native image's (x = column, y = row), the same as the portal's scores and labels.
 */
export class StackViewer {
  readonly viewport: StackViewport;
  private readonly engine: RenderingEngine;
  private readonly toolGroupId: string;
  private readonly resizeObserver: ResizeObserver;
  private imageIds: string[] = [];
  private destroyed = false;

  constructor(readonly element: HTMLDivElement) {
    initCornerstoneOnce();
    const n = ++instanceCount;
    this.engine = new RenderingEngine(`engine-${n}`);
    const viewportId = `stack-${n}`;
    this.engine.enableElement({
      viewportId,
      type: Enums.ViewportType.STACK,
      element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
    this.viewport = this.engine.getViewport(viewportId) as StackViewport;

    this.toolGroupId = `tools-${n}`;
    const group = ToolGroupManager.createToolGroup(this.toolGroupId);
    if (!group) throw new Error('Could not create the viewer tool group');
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool]) group.addTool(tool.toolName);
    group.addViewport(viewportId, this.engine.id);
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    this.setPrimaryTool('annotate');

    // Keep the canvas matched to its box without resetting the user's zoom and pan.
    this.resizeObserver = new ResizeObserver(() => {
      if (!this.destroyed) this.engine.resize(true, true);
    });
    this.resizeObserver.observe(element);
    element.addEventListener('contextmenu', (event) => event.preventDefault());
  }

  /** 'annotate' leaves the left button to the labelling layer. */
  setPrimaryTool(tool: PrimaryTool): void {
    const group = ToolGroupManager.getToolGroup(this.toolGroupId);
    if (!group) return;
    const leftButtonTools: Record<Exclude<PrimaryTool, 'annotate'>, string> = {
      windowLevel: WindowLevelTool.toolName,
      pan: PanTool.toolName,
      zoom: ZoomTool.toolName,
      measure: LengthTool.toolName, // distances in mm from the pixel spacing, drawn on their slice only
    };
    // setToolPassive drops only the primary binding: pan keeps the middle and zoom the right button.
    for (const [name, toolName] of Object.entries(leftButtonTools)) {
      if (name === tool) group.setToolActive(toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
      else group.setToolPassive(toolName);
    }
  }

  async showStack(imageIds: string[], index: number): Promise<void> {
    this.imageIds = imageIds;
    await this.viewport.setStack(imageIds, clampIndex(index, imageIds.length));
    this.viewport.render();
  }

  /** Load every slice into the cache (after the first one is on screen). */
  prefetchAll(onProgress: (progress: LoadProgress) => void): Promise<LoadProgress> {
    const progress: LoadProgress = { loaded: 0, failed: 0, total: this.imageIds.length };
    const current = this.currentIndex();
    // Nearest slices first, so scrolling from the current position hits the cache.
    const order = this.imageIds
      .map((imageId, index) => ({ imageId, distance: Math.abs(index - current) }))
      .sort((a, b) => a.distance - b.distance);
    return Promise.all(
      order.map(({ imageId }) =>
        imageLoader
          .loadAndCacheImage(imageId)
          .then(() => progress.loaded++, () => progress.failed++)
          .then(() => {
            if (!this.destroyed) onProgress({ ...progress });
          }),
      ),
    ).then(() => progress);
  }

  currentIndex(): number {
    return this.viewport.getCurrentImageIdIndex();
  }

  get sliceCount(): number {
    return this.imageIds.length;
  }

  async goToSlice(index: number): Promise<void> {
    const target = clampIndex(index, this.imageIds.length);
    if (target !== this.currentIndex()) await this.viewport.setImageIdIndex(target);
  }

  applyPreset(preset: WindowPreset): void {
    const image = this.viewport.getCornerstoneImage();
    const range = image ? preset.range(image) : null;
    if (range && range.upper > range.lower) this.viewport.setProperties({ voiRange: range });
    else this.viewport.resetProperties(); // the image's own window
    this.viewport.render();
  }

  /** Zoom, pan and window back to the start (measurements are kept: they are saved with the study). */
  reset(): void {
    this.viewport.resetProperties();
    this.viewport.resetCamera();
    this.viewport.render();
  }

  zoomBy(factor: number): void {
    const camera = this.viewport.getCamera();
    if (camera.parallelScale) this.viewport.setCamera({ parallelScale: camera.parallelScale / factor });
    this.viewport.render();
  }

  /**
   * Pan (never zoom) so a native pixel is on screen; a point already visible stays put,
   * so the picture does not jump under the user.
   */
  bringIntoView(point: Point, marginPx = 40): void {
    const imageId = this.imageIds[this.currentIndex()];
    const onCanvas = this.pixelToCanvas(point);
    if (!imageId || !onCanvas) return;
    const { clientWidth: width, clientHeight: height } = this.element;
    const visible = onCanvas[0] >= marginPx && onCanvas[1] >= marginPx
      && onCanvas[0] <= width - marginPx && onCanvas[1] <= height - marginPx;
    if (visible) return;
    const world = utilities.imageToWorldCoords(imageId, point);
    const camera = this.viewport.getCamera();
    if (!world || !camera.focalPoint || !camera.position) return;
    const shift = [0, 1, 2].map((i) => world[i]! - camera.focalPoint![i]!);
    this.viewport.setCamera({
      focalPoint: camera.focalPoint.map((v, i) => v + shift[i]!) as Types.Point3,
      position: camera.position.map((v, i) => v + shift[i]!) as Types.Point3,
    });
    this.viewport.render();
  }

  /** Native pixel -> CSS pixels inside the viewport element. */
  pixelToCanvas(point: Point): Point | null {
    const imageId = this.imageIds[this.currentIndex()];
    if (!imageId) return null;
    const world = utilities.imageToWorldCoords(imageId, point);
    if (!world) return null;
    const canvas = this.viewport.worldToCanvas(world);
    return [canvas[0], canvas[1]];
  }

  /** CSS pixels inside the viewport element -> native pixel (fractional). */
  canvasToPixel(point: Point): Point | null {
    const imageId = this.imageIds[this.currentIndex()];
    if (!imageId) return null;
    const world = this.viewport.canvasToWorld(point as Types.Point2);
    const pixel = utilities.worldToImageCoords(imageId, world);
    return pixel ? [pixel[0], pixel[1]] : null;
  }

  on(event: string, listener: (event: Event) => void): void {
    this.element.addEventListener(event, listener);
  }

  destroy(): void {
    this.destroyed = true;
    this.resizeObserver.disconnect();
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    this.engine.destroy();
  }
}

export function clampIndex(index: number, count: number): number {
  if (count === 0) return 0;
  return Math.min(count - 1, Math.max(0, Math.round(index)));
}

export { Enums as CoreEnums };
