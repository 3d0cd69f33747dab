import { cache, type Types } from '@cornerstonejs/core';
import type { Point } from './stackViewer';

export type Plane = 'coronal' | 'sagittal';

/** Stored values and the rescale still to apply (the image loader may have applied it already). */
export function modalityPixels(image: Types.IImage): { pixels: ArrayLike<number>; slope: number; intercept: number } {
  const scaled = Boolean(image.preScale?.scaled ?? image.isPreScaled);
  return { pixels: image.getPixelData(), slope: scaled ? 1 : (image.slope ?? 1), intercept: scaled ? 0 : (image.intercept ?? 0) };
}

/** The modality value (Hounsfield units for CT) of a native pixel of a loaded image; null outside it. */
export function valueAt(image: Types.IImage | undefined, [x, y]: Point): number | null {
  if (!image || image.color) return null;
  const column = Math.floor(x);
  const row = Math.floor(y);
  if (column < 0 || row < 0 || column >= image.columns || row >= image.rows) return null;
  const { pixels, slope, intercept } = modalityPixels(image);
  const stored = pixels[row * image.columns + column];
  return stored === undefined ? null : stored * slope + intercept;
}

export interface ReformatImage {
  data: ImageData;
  /** Image row of slice `index` (row 0 is the top: the last slice when `topIsLast`). */
  rowOf: (index: number) => number;
  sliceAt: (row: number) => number;
}

/**
 * A coronal (one image row through every slice) or sagittal (one column) reformat of a loaded stack, in the
 * viewer's window, built from the images in Cornerstone's cache (about 2 ms with the drawing for 99 slices of
 * 512 x 512). Null while a slice is missing from the cache.
 */
export function buildReformat(imageIds: string[], plane: Plane, at: number, voi: { lower: number; upper: number },
  topIsLast: boolean): ReformatImage | null {
  const images = imageIds.map((id) => cache.getImage(id));
  if (images.length === 0 || images.some((image) => !image || image.color)) return null;
  const first = images[0]!;
  const width = plane === 'coronal' ? first.columns : first.rows;
  const fixed = Math.min(Math.max(0, Math.floor(at)), (plane === 'coronal' ? first.rows : first.columns) - 1);
  const data = new ImageData(width, images.length);
  const span = Math.max(1e-6, voi.upper - voi.lower);
  const rowOf = (index: number): number => (topIsLast ? images.length - 1 - index : index);
  images.forEach((image, index) => {
    const { pixels, slope, intercept } = modalityPixels(image!);
    const out = rowOf(index) * width * 4;
    for (let i = 0; i < width && i < (plane === 'coronal' ? image!.columns : image!.rows); i++) {
      const stored = plane === 'coronal' ? pixels[fixed * image!.columns + i]! : pixels[i * image!.columns + fixed]!;
      const grey = Math.round(Math.min(1, Math.max(0, (stored * slope + intercept - voi.lower) / span)) * 255);
      data.data[out + i * 4] = data.data[out + i * 4 + 1] = data.data[out + i * 4 + 2] = grey;
      data.data[out + i * 4 + 3] = 255;
    }
  });
  return { data, rowOf, sliceAt: (row) => rowOf(Math.min(images.length - 1, Math.max(0, row))) };
}
