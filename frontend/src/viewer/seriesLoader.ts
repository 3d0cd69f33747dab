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
 * Fetch a series' DICOM JSON metadata from the WADO-RS proxy and register it with the wadors loader, so its
 * images load by image id; returns each SOP Instance UID's image id.
 */
export async function registerSeries(studyUid: string, seriesUid: string): Promise<Map<string, string>> {
  const metadata = await getJson<DicomJsonInstance[]>(
    `${DICOMWEB_ROOT}/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/metadata`,
  );
  const imageIds = new Map<string, string>();
  for (const instance of metadata) {
    const uid = sopInstanceUid(instance);
    if (!uid) continue;
    const imageId = imageIdFor(studyUid, seriesUid, uid);
    wadors.metaDataManager.add(imageId, instance as never);
    imageIds.set(uid, imageId);
  }
  return imageIds;
}

/** The series' image ids in the portal's slice order (slice_index 0..n-1), their metadata registered. */
export async function prepareImageIds(series: SeriesDetail): Promise<string[]> {
  const registered = await registerSeries(series.study_uid, series.series_uid);
  const ordered = [...series.instances].sort((a, b) => a.slice_index - b.slice_index);
  return ordered.map((instance) => {
    const imageId = registered.get(instance.sop_instance_uid);
    if (!imageId) throw new Error(`The image archive has no metadata for instance ${instance.sop_instance_uid}`);
    return imageId;
  });
}
