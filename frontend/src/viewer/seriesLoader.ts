import { wadors } from '@cornerstonejs/dicom-image-loader';
import { getJson } from '../api';
import type { SeriesDetail } from '../types';

export const DICOMWEB_ROOT = '/dicomweb';

type DicomJsonInstance = Record<string, { vr: string; Value?: unknown[] }>;

function sopInstanceUid(instance: DicomJsonInstance): string | null {
  const value = instance['00080018']?.Value?.[0];
  return typeof value === 'string' ? value : null;
}

export function imageIdFor(studyUid: string, seriesUid: string, sopUid: string): string {
  return `wadors:${DICOMWEB_ROOT}/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}/frames/1`;
}

/**
 * Fetch the series' DICOM JSON metadata from the WADO-RS proxy and register it with
 * the wadors loader, returning image ids in the portal's slice order (slice_index 0..n-1).
 */
export async function prepareImageIds(series: SeriesDetail): Promise<string[]> {
  const metadata = await getJson<DicomJsonInstance[]>(
    `${DICOMWEB_ROOT}/studies/${encodeURIComponent(series.study_uid)}/series/${encodeURIComponent(series.series_uid)}/metadata`,
  );
  const bySop = new Map<string, DicomJsonInstance>();
  for (const instance of metadata) {
    const uid = sopInstanceUid(instance);
    if (uid) bySop.set(uid, instance);
  }
  const ordered = [...series.instances].sort((a, b) => a.slice_index - b.slice_index);
  return ordered.map((instance) => {
    const imageId = imageIdFor(series.study_uid, series.series_uid, instance.sop_instance_uid);
    const json = bySop.get(instance.sop_instance_uid);
    if (!json) throw new Error(`The image archive has no metadata for instance ${instance.sop_instance_uid}`);
    wadors.metaDataManager.add(imageId, json as never);
    return imageId;
  });
}
