import type {
  AccessEvent, AdjudicationItem, AgreementReport, CopyMoveFinding, CopyMoveReview, CopySlicePairs, CreatedShare, EncryptedShare, Job, Label, LabelClass, LabelRevision, Me, Measurement, NewLabel, Page, QueueItem, QueueSummary,
  InsurerAccess, InsurerAccount, ModelVersionRecord, RelabelResult, RetrainRun, SeriesDetail, SingleImageModel, SeriesScores, ShareCheck, StudyCopy, StudyDetail, StudyIntegrity, StudySummary, UploadBatch,
} from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

export function csrfToken(): string {
  return readCookie('csrftoken') ?? '';
}

export function loginUrl(next: string = location.pathname + location.search): string {
  return `/accounts/login/?next=${encodeURIComponent(next)}`;
}

/** Django answers 401/403 for anonymous API calls: send the browser to its login form. */
export function redirectToLogin(): never {
  location.assign(loginUrl());
  throw new ApiError(401, null, 'Not logged in');
}

function errorMessage(status: number, body: unknown): string {
  if (body && typeof body === 'object' && 'detail' in body) return String((body as { detail: unknown }).detail);
  // DRF field errors: {"reason": ["This field may not be blank."]}
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const parts = Object.entries(body as Record<string, unknown>).map(([key, value]) =>
      `${key}: ${Array.isArray(value) ? value.join(' ') : String(value)}`);
    if (parts.length) return parts.join('; ');
  }
  return `Request failed (HTTP ${status})`;
}

async function parseBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** DRF answers 403 "Authentication credentials were not provided." when the session has expired. */
function sessionEnded(body: unknown): boolean {
  const detail = body && typeof body === 'object' && 'detail' in body ? String((body as { detail: unknown }).detail) : '';
  return /credentials were not provided|not authenticated/i.test(detail);
}

// Set once /api/me succeeded: afterwards a 403 means "not allowed", not "log in".
let isLoggedIn = false;

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

async function send(method: string, url: string, body?: unknown, accept = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept };
  if (UNSAFE.has(method)) headers['X-CSRFToken'] = csrfToken();
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  return fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : form ? body : JSON.stringify(body),
  });
}

async function check(response: Response, data: unknown): Promise<void> {
  if (response.status === 401 || (response.status === 403 && (!isLoggedIn || sessionEnded(data)))) redirectToLogin();
  if (!response.ok) throw new ApiError(response.status, data, errorMessage(response.status, data));
}

/** JSON (or FormData, sent as multipart) in, JSON out. */
export async function apiRequest<T>(method: string, url: string, body?: unknown): Promise<{ status: number; data: T }> {
  const response = await send(method, url, body);
  const data = await parseBody(response);
  await check(response, data);
  return { status: response.status, data: data as T };
}

/** A file answer (e.g. a zip) as a Blob, with the name the server suggests. */
export async function apiDownload(method: string, url: string, body?: unknown): Promise<{ blob: Blob; filename: string }> {
  const response = await send(method, url, body, '*/*');
  if (!response.ok) await check(response, await parseBody(response));
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const filename = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? 'download';
  return { blob: await response.blob(), filename };
}


export async function getJson<T>(url: string): Promise<T> {
  return (await apiRequest<T>('GET', url)).data;
}

function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const api = {
  async me(): Promise<Me> {
    const me = await getJson<Me>('/api/me');
    isLoggedIn = true;
    return me;
  },
  job: (id: number | string) => getJson<Job>(`/api/jobs/${encodeURIComponent(String(id))}`),
  studies: (filters: Record<string, string | number | null | undefined>) =>
    getJson<Page<StudySummary>>(`/api/studies${query(filters)}`),
  uploads: () => getJson<Page<UploadBatch>>('/api/uploads'),
  study: (studyUid: string) => getJson<StudyDetail>(`/api/studies/${encodeURIComponent(studyUid)}`),
  withdrawStudy: async (studyUid: string, reason: string) =>
    (await apiRequest<StudyDetail>('POST', `/api/studies/${encodeURIComponent(studyUid)}/withdraw`, { reason })).data,
  restoreStudy: async (studyUid: string) =>
    (await apiRequest<StudyDetail>('POST', `/api/studies/${encodeURIComponent(studyUid)}/restore`)).data,
  series: (seriesUid: string) => getJson<SeriesDetail>(`/api/series/${encodeURIComponent(seriesUid)}`),
  studyAccessLog: (studyUid: string) => getJson<Page<AccessEvent>>(`/api/studies/${encodeURIComponent(studyUid)}/access`),
  /** Queue a new scoring job for the series (409 while one is queued or running). */
  rescoreSeries: async (seriesUid: string) =>
    (await apiRequest<Job>('POST', `/api/series/${encodeURIComponent(seriesUid)}/rescore`)).data,
  async scores(seriesUid: string): Promise<SeriesScores | null> {
    try {
      return await getJson<SeriesScores>(`/api/series/${encodeURIComponent(seriesUid)}/scores`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  },
  heatmapUrl: (seriesUid: string, sliceIndex: number) =>
    `/api/series/${encodeURIComponent(seriesUid)}/heatmap/${sliceIndex}.png`,
  async labels(seriesUid: string): Promise<Label[]> {
    const data = await getJson<Label[] | Page<Label>>(`/api/labels${query({ series: seriesUid })}`);
    if (Array.isArray(data)) return data;
    const all = [...data.results];
    let next = data.next;
    while (next) {
      const page = await getJson<Page<Label>>(next);
      all.push(...page.results);
      next = page.next;
    }
    return all;
  },
  createLabel: async (label: NewLabel) => (await apiRequest<Label>('POST', '/api/labels', label)).data,
  updateLabel: async (id: Label['id'], changes: Partial<NewLabel>) =>
    (await apiRequest<Label>('PATCH', `/api/labels/${encodeURIComponent(String(id))}`, changes)).data,
  deleteLabel: async (id: Label['id']) => {
    await apiRequest<null>('DELETE', `/api/labels/${encodeURIComponent(String(id))}`);
  },
  /** Bring back a deleted label (undo); its author, or an expert with a reason. */
  restoreLabel: async (id: Label['id']) =>
    (await apiRequest<Label>('POST', `/api/labels/${encodeURIComponent(String(id))}/restore`)).data,
  labelHistory: (id: Label['id']) =>
    getJson<LabelRevision[]>(`/api/labels/${encodeURIComponent(String(id))}/history`),
  /** Expert only: change a label's class with a reason (HTTP 403 for other roles). */
  relabel: async (id: Label['id'], labelClass: LabelClass, reason: string) =>
    (await apiRequest<RelabelResult>('POST', `/api/labels/${encodeURIComponent(String(id))}/relabel`,
      { label_class: labelClass, reason })).data,
  measurements: (seriesUid: string) =>
    getJson<Measurement[]>(`/api/series/${encodeURIComponent(seriesUid)}/measurements`),
  createMeasurement: async (seriesUid: string, sopInstanceUid: string, points: [number, number][]) =>
    (await apiRequest<Measurement>('POST', `/api/series/${encodeURIComponent(seriesUid)}/measurements`,
      { sop_instance_uid: sopInstanceUid, points })).data,
  moveMeasurement: async (id: number, points: [number, number][]) =>
    (await apiRequest<Measurement>('PATCH', `/api/measurements/${id}`, { points })).data,
  deleteMeasurement: async (id: number) => {
    await apiRequest<null>('DELETE', `/api/measurements/${id}`);
  },
  adjudications: (page = 1) => getJson<Page<AdjudicationItem>>(`/api/adjudications${query({ page: page > 1 ? page : null })}`),
  adjudication: (id: number | string) => getJson<AdjudicationItem>(`/api/adjudications/${encodeURIComponent(String(id))}`),
  adjudicate: async (id: number | string, labelClass: LabelClass, reason: string) =>
    (await apiRequest<Label>('POST', `/api/adjudications/${encodeURIComponent(String(id))}`, { label_class: labelClass, reason })).data,
  /** Experts: images with a copy found in radiographs; `reviewed` false: those waiting for a review. */
  copyMoveFindings: (reviewed: boolean | null, page = 1) =>
    getJson<Page<CopyMoveFinding>>(`/api/copy-move/findings${query({ reviewed: reviewed === null ? null : String(reviewed), page: page > 1 ? page : null })}`),
  /** Experts: a copy confirmed, or dismissed with a reason (the study's verdict then leaves it out). */
  reviewCopyMove: async (seriesUid: string, sopInstanceUid: string, decision: CopyMoveReview['decision'], reason = '') =>
    (await apiRequest<CopyMoveReview>('POST', `/api/series/${encodeURIComponent(seriesUid)}/copy-move/${encodeURIComponent(sopInstanceUid)}/reviews`,
      { decision, reason })).data,
  studyLabelCount: async (studyUid: string) =>
    (await getJson<Page<Label>>(`/api/labels${query({ study: studyUid })}`)).count,
  exportLabels: (studyUid: string, format: 'csv' | 'sr') =>
    apiDownload('GET', `/api/studies/${encodeURIComponent(studyUid)}/labels.${format === 'csv' ? 'csv' : 'sr.dcm'}`),
  async importCtganCsv(file: File, seriesUid: string): Promise<{ imported: number; ids: number[] }> {
    const form = new FormData();
    form.append('file', file);
    form.append('series_uid', seriesUid);
    return (await apiRequest<{ imported: number; ids: number[] }>('POST', '/api/labels/import', form)).data;
  },
  /** Workers consuming the scoring queue, or the bulk queue (null: the broker cannot tell); /readyz answers
   *  503 when not ready. */
  async scoringWorkers(bulk = false): Promise<number | null> {
    try {
      const response = await fetch('/readyz', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      const ready = (await response.json()) as { workers: number | null; bulk_workers?: number | null };
      return (bulk ? ready.bulk_workers : ready.workers) ?? null;
    } catch {
      return null;
    }
  },
  insurers: () => getJson<InsurerAccount[]>('/api/insurers'),
  models: () => getJson<Page<ModelVersionRecord>>('/api/models'),
  singleImageModel: () => getJson<SingleImageModel>('/api/models/single-image'),
  staleSeries: () => getJson<{ model: string; stale_series: number }>('/api/models/stale-series'),
  studyCopies: (studyUid: string) => getJson<StudyCopy[]>(`/api/provenance/studies/${encodeURIComponent(studyUid)}/copies`),
  copyPairs: (seriesUid: string, otherStudyUid: string) =>
    getJson<CopySlicePairs>(`/api/provenance/series/${encodeURIComponent(seriesUid)}/copies/${encodeURIComponent(otherStudyUid)}`),
  studyIntegrity: async (studyUid: string) =>
    (await apiRequest<StudyIntegrity>('POST', `/api/provenance/studies/${encodeURIComponent(studyUid)}/integrity`)).data,
  rescoreStaleSeries: async () =>
    (await apiRequest<{ queued: number; already_pending: number; not_scored: number }>('POST', '/api/models/stale-series')).data,
  rollbackModel: async (id: number) =>
    (await apiRequest<ModelVersionRecord>('POST', `/api/models/${id}/rollback`)).data,
  retrainRuns: () => getJson<Page<RetrainRun>>('/api/retrain'),
  startRetrain: async () => (await apiRequest<RetrainRun>('POST', '/api/retrain')).data,
  insurerAccess: (studyUid: string) =>
    getJson<InsurerAccess[]>(`/api/shares/studies/${encodeURIComponent(studyUid)}/insurers`),
  grantInsurer: async (studyUid: string, insurer: string) =>
    (await apiRequest<InsurerAccess>('POST', `/api/shares/studies/${encodeURIComponent(studyUid)}/insurers`, { insurer })).data,
  revokeInsurer: async (studyUid: string, insurer: string) => {
    await apiRequest<null>('DELETE', `/api/shares/studies/${encodeURIComponent(studyUid)}/insurers/${encodeURIComponent(insurer)}`);
  },
  shares: (studyUid?: string) => getJson<EncryptedShare[]>(`/api/shares/encrypted${query({ study: studyUid })}`),
  createShare: async (studyUid: string, recipient: string) =>
    (await apiRequest<CreatedShare>('POST', '/api/shares/encrypted', { study_uid: studyUid, recipient })).data,
  revokeShare: async (id: string) =>
    (await apiRequest<EncryptedShare>('POST', `/api/shares/encrypted/${encodeURIComponent(id)}/revoke`)).data,
  shareArchiveUrl: (id: string) => `/api/shares/encrypted/${encodeURIComponent(id)}/archive`,
  openShare: async (id: string, key: string) =>
    (await apiRequest<ShareCheck>('POST', `/api/shares/encrypted/${encodeURIComponent(id)}/open`, { key })).data,
  shareFiles: (id: string, key: string) => apiDownload('POST', `/api/shares/encrypted/${encodeURIComponent(id)}/files`, { key }),
  async importShare(archive: File, key: string): Promise<ShareCheck> {
    const form = new FormData();
    form.append('archive', archive);
    form.append('key', key);
    return (await apiRequest<ShareCheck>('POST', '/api/shares/import', form)).data;
  },
  queueItems: (seriesUid: string, status = 'open') =>
    getJson<Page<QueueItem>>(`/api/queue${query({ series: seriesUid, status })}`),
  queueSummary: () => getJson<QueueSummary>('/api/queue/summary'),
  agreement: (since = '') => getJson<AgreementReport>(`/api/labels/agreement${query({ since })}`),
  releaseQueueItem: async (id: number | string) =>
    (await apiRequest<QueueItem>('POST', `/api/queue/${encodeURIComponent(String(id))}/release`)).data,
  queueStrategies: () => getJson<{ strategies: string[]; default: string }>('/api/queue/strategies'),
  rebuildQueue: async (seriesUid: string, strategy: string, batchSize: number, requiredLabels: number) =>
    (await apiRequest<QueueItem[]>('POST', '/api/queue/rebuild', {
      series_uid: seriesUid, strategy, batch_size: batchSize, required_labels: requiredLabels,
    })).data,
  /** null when the queue is empty (HTTP 204). */
  async nextQueueItem(): Promise<QueueItem | null> {
    const { status, data } = await apiRequest<QueueItem | null>('POST', '/api/queue/next');
    return status === 204 || !data ? null : data;
  },
};

export function viewerPath(studyUid: string, seriesUid: string, params: Record<string, string | number | null | undefined> = {}): string {
  return `/viewer/${encodeURIComponent(studyUid)}/${encodeURIComponent(seriesUid)}${query(params)}`;
}
