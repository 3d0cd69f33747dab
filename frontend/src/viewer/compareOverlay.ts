import { imageLoader, type Types } from '@cornerstonejs/core';
import { api } from '../api';
import type { CopySlicePairs } from '../types';
import { drawOverImage, type ImageGeometry } from './heatmapOverlay';
import { modalityPixels } from './reformat';
import { registerSeries } from './seriesLoader';

/** Smaller differences are not shown: a copy that was only re-encoded losslessly differs by 0. */
export const DIFFERENCE_HU = 10;

/**
 * Where this image differs from the same image in another study (a copy found by its signed pixel hashes):
 * red where this one is denser (something added, e.g. an injected nodule), blue where it is less dense
 * (something taken away), clear where they agree. The viewer draws it over the slice.
 */
export function differenceTile(mine: Types.IImage, theirs: Types.IImage): { tile: HTMLCanvasElement; differing: number } | null {
  if (mine.color || theirs.color || mine.rows !== theirs.rows || mine.columns !== theirs.columns) return null;
  const a = modalityPixels(mine);
  const b = modalityPixels(theirs);
  const out = new ImageData(mine.columns, mine.rows);
  let differing = 0;
  for (let i = 0; i < mine.rows * mine.columns; i++) {
    const delta = (a.pixels[i]! * a.slope + a.intercept) - (b.pixels[i]! * b.slope + b.intercept);
    if (Math.abs(delta) < DIFFERENCE_HU) continue;
    differing++;
    const strength = Math.min(1, Math.abs(delta) / 300);
    out.data[i * 4] = delta > 0 ? 255 : 30;
    out.data[i * 4 + 1] = 40;
    out.data[i * 4 + 2] = delta > 0 ? 40 : 255;
    out.data[i * 4 + 3] = Math.round(255 * (0.45 + 0.5 * strength));
  }
  const tile = document.createElement('canvas');
  tile.width = mine.columns;
  tile.height = mine.rows;
  tile.getContext('2d')?.putImageData(out, 0, 0);
  return { tile, differing };
}

/** The comparison with one copy: its slice pairs, the copy's images loaded on demand through the proxy. */
export class CompareOverlay {
  readonly canvas: HTMLCanvasElement;
  private pairs: Map<number, CopySlicePairs['pairs'][number]> = new Map();
  private theirImageIds = new Map<string, string>();
  private tile: HTMLCanvasElement | null = null;
  private shownSlice = -1;
  otherStudyUid: string | null = null;

  constructor() {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'compare-layer';
    this.canvas.dataset.testid = 'compare-layer';
  }

  get active(): boolean {
    return this.otherStudyUid !== null;
  }

  async start(seriesUid: string, otherStudyUid: string): Promise<void> {
    const found = await api.copyPairs(seriesUid, otherStudyUid);
    this.theirImageIds = await registerSeries(found.other_study_uid, found.other_series_uid);
    this.pairs = new Map(found.pairs.map((pair) => [pair.slice_index, pair]));
    this.otherStudyUid = otherStudyUid;
  }

  stop(): void {
    this.otherStudyUid = null;
    this.tile = null;
    this.shownSlice = -1;
    delete this.canvas.dataset.differing;
    drawOverImage(this.canvas, null, { rows: 0, columns: 0, pixelToCanvas: () => null });
  }

  /**
   * Compare slice `index` (its image id `mine`) with the copy's image at the same place: resolves to the pixels
   * that differ by DIFFERENCE_HU or more, null when the copy has no image there.
   */
  async showSlice(index: number, mine: string, geometry: ImageGeometry): Promise<number | null> {
    this.shownSlice = index;
    const other = this.pairs.get(index)?.other_sop_instance_uid;
    const theirs = other ? this.theirImageIds.get(other) : undefined;
    let difference: { tile: HTMLCanvasElement; differing: number } | null = null;
    if (theirs) {
      const [a, b] = await Promise.all([imageLoader.loadAndCacheImage(mine), imageLoader.loadAndCacheImage(theirs)]);
      difference = differenceTile(a, b);
    }
    const differing = difference?.differing ?? null;
    if (this.shownSlice !== index || !this.active) return differing; // the reader moved on meanwhile
    this.tile = difference?.tile ?? null;
    this.canvas.dataset.differing = String(differing ?? '');
    this.draw(geometry);
    return differing;
  }

  draw(geometry: ImageGeometry): void {
    drawOverImage(this.canvas, this.active ? this.tile : null, geometry);
  }
}
