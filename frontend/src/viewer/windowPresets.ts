import type { Types } from '@cornerstonejs/core';

export interface VoiRange {
  lower: number;
  upper: number;
}

export interface WindowPreset {
  id: string;
  label: string;
  key: string;
  /** What the help lists for its key. */
  description: string;
  /** The window for this image; null: the image's own (its DICOM header's window, what Reset gives). */
  range: (image: Types.IImage) => VoiRange | null;
}

function ctWindow(id: string, label: string, key: string, width: number, center: number): WindowPreset {
  return {
    id, label, key,
    description: `${label} window (W ${width} / L ${center})`,
    range: () => ({ lower: center - width / 2, upper: center + width / 2 }),
  };
}

// Standard chest CT windows (Hounsfield units).
export const CT_PRESETS: readonly WindowPreset[] = [
  ctWindow('lung', 'Lung', 'l', 1500, -600),
  ctWindow('mediastinum', 'Mediastinum', 'm', 350, 50),
  ctWindow('bone', 'Bone', 'b', 1800, 400),
];

// Radiographs (and anything not CT) have no Hounsfield scale: their own window, or every stored value.
export const IMAGE_PRESETS: readonly WindowPreset[] = [
  { id: 'image', label: 'Image window', key: 'i', description: 'The window stored with the image (radiographs)', range: () => null },
  {
    id: 'full', label: 'Full range', key: 'f', description: 'Every stored value, darkest to brightest (radiographs)',
    range: (image) => ({
      lower: image.minPixelValue * image.slope + image.intercept,
      upper: image.maxPixelValue * image.slope + image.intercept,
    }),
  },
];

export function windowPresetsFor(modality: string): readonly WindowPreset[] {
  return modality.toUpperCase() === 'CT' ? CT_PRESETS : IMAGE_PRESETS;
}
