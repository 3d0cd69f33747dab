export interface WindowPreset {
  id: 'lung' | 'mediastinum' | 'bone';
  label: string;
  key: string;
  width: number;
  center: number;
}

// Standard chest CT windows (Hounsfield units).
export const WINDOW_PRESETS: readonly WindowPreset[] = [
  { id: 'lung', label: 'Lung', key: 'l', width: 1500, center: -600 },
  { id: 'mediastinum', label: 'Mediastinum', key: 'm', width: 350, center: 50 },
  { id: 'bone', label: 'Bone', key: 'b', width: 1800, center: 400 },
];

export function voiRangeFor(preset: WindowPreset): { lower: number; upper: number } {
  return { lower: preset.center - preset.width / 2, upper: preset.center + preset.width / 2 };
}
