import { csrfToken, redirectToLogin } from '../api';
import type { UploadResponse } from '../types';
import type { PickedFile } from './collectFiles';

/**
 * The portal queues one scoring job per series touched by a request, so a series should
 * arrive in as few requests as possible: a typical CT series goes in one request, and only
 * large drops are split. Per-file progress still works inside one request (see uploadAll).
 * 100 files is Django's default DATA_UPLOAD_MAX_NUMBER_FILES.
 */
export const MAX_FILES_PER_REQUEST = 100;
export const MAX_BYTES_PER_REQUEST = 200 * 1024 * 1024;
/** Requests in flight at once (only matters for drops larger than one request). */
export const PARALLEL_REQUESTS = 2;

/** Split into consecutive chunks (keeping a folder's files together) within both limits. */
export function planChunks(files: PickedFile[]): number[][] {
  const chunks: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  files.forEach((picked, index) => {
    const size = picked.file.size;
    if (current.length && (current.length >= MAX_FILES_PER_REQUEST || bytes + size > MAX_BYTES_PER_REQUEST)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(index);
    bytes += size;
  });
  if (current.length) chunks.push(current);
  return chunks;
}

export type ChunkOutcome =
  | { kind: 'ok'; status: number; response: UploadResponse }
  | { kind: 'invalid'; detail: string; response: Partial<UploadResponse> }
  | { kind: 'pacsDown'; detail: string; batch: string | null }
  | { kind: 'failed'; detail: string };

export interface UploadCallbacks {
  /** bytesSent for one file of a chunk, 0..file.size */
  onFileProgress: (index: number, bytesSent: number) => void;
  /** Every byte of the chunk is out; the portal is now checking and storing it. */
  onChunkSent: (indexes: number[]) => void;
  onChunkDone: (indexes: number[], outcome: ChunkOutcome) => void;
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function postChunk(files: PickedFile[], onProgress: (loaded: number) => void, onSent: () => void): Promise<ChunkOutcome> {
  const form = new FormData();
  for (const picked of files) form.append('files', picked.file, picked.file.name);
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/studies/upload');
    xhr.withCredentials = true;
    xhr.setRequestHeader('X-CSRFToken', csrfToken());
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.upload.onload = onSent;
    xhr.onerror = () => resolve({ kind: 'failed', detail: 'Network error while uploading' });
    xhr.onload = () => {
      const body = parseJson(xhr.responseText);
      const detail = typeof body.detail === 'string' ? body.detail : `HTTP ${xhr.status}`;
      if (xhr.status === 401 || xhr.status === 403) {
        if (xhr.status === 401) redirectToLogin();
        resolve({ kind: 'failed', detail: detail || 'Not allowed to upload' });
      } else if (xhr.status === 201 || xhr.status === 207 || xhr.status === 200) {
        resolve({ kind: 'ok', status: xhr.status, response: body as unknown as UploadResponse });
      } else if (xhr.status === 400) {
        resolve({ kind: 'invalid', detail, response: body as Partial<UploadResponse> });
      } else if (xhr.status === 503) {
        resolve({ kind: 'pacsDown', detail, batch: typeof body.batch === 'string' ? body.batch : null });
      } else {
        resolve({ kind: 'failed', detail });
      }
    };
    xhr.send(form);
  });
}

/**
 * Upload the files in chunks, PARALLEL_REQUESTS at a time. The multipart body carries
 * the files in order, so the bytes sent so far are credited to the chunk's files in order:
 * each file's bar fills as its own bytes go out.
 */
export async function uploadAll(files: PickedFile[], callbacks: UploadCallbacks): Promise<void> {
  const chunks = planChunks(files);
  let nextChunk = 0;
  const worker = async (): Promise<void> => {
    while (nextChunk < chunks.length) {
      const indexes = chunks[nextChunk++]!;
      const chunkFiles = indexes.map((i) => files[i]!);
      const totalBytes = chunkFiles.reduce((sum, p) => sum + p.file.size, 0);
      const outcome = await postChunk(chunkFiles, (loaded) => {
        // `loaded` includes multipart framing; scale it to the payload bytes.
        let remaining = Math.min(loaded, totalBytes);
        indexes.forEach((fileIndex, j) => {
          const size = chunkFiles[j]!.file.size;
          callbacks.onFileProgress(fileIndex, Math.min(size, Math.max(0, remaining)));
          remaining -= size;
        });
      }, () => callbacks.onChunkSent(indexes));
      indexes.forEach((fileIndex, j) => callbacks.onFileProgress(fileIndex, chunkFiles[j]!.file.size));
      callbacks.onChunkDone(indexes, outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_REQUESTS, chunks.length) }, worker));
}
