// Load timings read by scripts/bench_viewer.py and the browser tests.
export interface ViewerStats {
  seriesUid: string;
  slices: number;
  /** ms from viewer mount to the first slice drawn */
  firstRenderMs: number | null;
  /** ms from viewer mount to every slice in the cache */
  allLoadedMs: number | null;
  /** same two, counted from the page's navigation start */
  firstRenderSinceNavigationMs: number | null;
  allLoadedSinceNavigationMs: number | null;
  failedSlices: number;
}

declare global {
  interface Window {
    __viewerStats?: ViewerStats;
  }
}

export function startViewerStats(seriesUid: string): {
  stats: ViewerStats;
  firstRender: () => void;
  allLoaded: (failed: number) => void;
} {
  const mountedAt = performance.now();
  const stats: ViewerStats = {
    seriesUid, slices: 0, firstRenderMs: null, allLoadedMs: null,
    firstRenderSinceNavigationMs: null, allLoadedSinceNavigationMs: null, failedSlices: 0,
  };
  window.__viewerStats = stats;
  performance.mark('viewer-mount');
  return {
    stats,
    firstRender() {
      if (stats.firstRenderMs !== null) return;
      const now = performance.now();
      stats.firstRenderMs = Math.round(now - mountedAt);
      stats.firstRenderSinceNavigationMs = Math.round(now);
      performance.mark('viewer-first-render');
    },
    allLoaded(failed) {
      const now = performance.now();
      stats.failedSlices = failed;
      stats.allLoadedMs = Math.round(now - mountedAt);
      stats.allLoadedSinceNavigationMs = Math.round(now);
      performance.mark('viewer-all-loaded');
    },
  };
}
