import { init as initCore } from '@cornerstonejs/core';
import { init as initLoader } from '@cornerstonejs/dicom-image-loader';
import {
  addTool, init as initTools, LengthTool, PanTool, StackScrollTool, WindowLevelTool, ZoomTool,
} from '@cornerstonejs/tools';

let initialised = false;

/** Cornerstone keeps global state (caches, workers, tool registry): set it up once per page load. */
export function initCornerstoneOnce(): void {
  if (initialised) return;
  initCore();
  initLoader({
    // Decoding uncompressed CT is cheap; more workers than cores only adds contention.
    maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)),
  });
  initTools();
  for (const tool of [PanTool, ZoomTool, WindowLevelTool, StackScrollTool, LengthTool]) addTool(tool);
  initialised = true;
}
