// Shapes of the portal's JSON API (see docs/frontend.md for the contract).
export type Role = 'clinician' | 'annotator' | 'expert' | 'insurer' | 'admin';
export type LabelClass = 'TB' | 'TM' | 'FB' | 'FM';
export const LABEL_CLASSES: readonly LabelClass[] = ['TB', 'TM', 'FB', 'FM'];
export const LABEL_CLASS_NAMES: Record<LabelClass, string> = {
  TB: 'True benign',
  TM: 'True malignant',
  FB: 'False benign (removed)',
  FM: 'False malignant (injected)',
};
export type ClassProbs = Record<LabelClass, number>;
export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface Me {
  username: string;
  role: Role;
  /** The browser signs out after this many seconds without use (0 or absent: never). */
  idle_logoff_s?: number;
}

export interface ModelVersion {
  name: string;
  trained: string | boolean | null;
  /** active, retired (replaced by a newer model or rolled back), untrained, candidate, rejected. */
  status?: string;
}

export interface JobSummary {
  id: number | string;
  series_uid: string;
  status: JobStatus;
}

export interface Job extends JobSummary {
  study_uid: string;
  /** 0: the detector found no lung tissue to score, so the job has no verdict. */
  scored_locations?: number | null;
  /** The series' verdict once done ('' when there was nothing to score). */
  verdict?: LabelClass | '';
  verdict_score?: number | null;
  /** Waits on the bulk queue (a re-score of many series); a person's re-score moves it forward. */
  bulk?: boolean;
  error: string | null;
  model_version: ModelVersion | null;
  created: string | null;
  started: string | null;
  finished: string | null;
}

export interface UploadStored {
  file: string;
  sop_instance_uid: string;
  study_uid: string;
  series_uid: string;
}

export interface UploadError {
  file: string;
  reason: string;
}

export interface UploadResponse {
  batch: string;
  stored: UploadStored[];
  errors: UploadError[];
  jobs: JobSummary[];
  /** Stored series the detector does not score (e.g. not CT), and why. */
  /** Radiographs (`copy_move_check`) are checked for a copied region instead. */
  not_scored?: { study_uid: string; series_uid: string; reason: string; copy_move_check: boolean }[];
}

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface StudySummary {
  study_uid: string;
  patient_id: string;
  patient_name: string;
  study_date: string | null;
  modalities: string[] | string;
  description: string;
  num_series: number;
  num_instances: number;
  verdict: LabelClass | null;
  verdict_score: number | null;
  model_version: ModelVersion | string | null;
  /** Scored, but no series had lung tissue to score: no verdict. */
  nothing_to_score?: boolean;
  /** Images of its radiographs with a region copied inside, less those an expert dismissed (> 0: tampering
   * suspected); null: none checked yet. */
  copy_move_images?: number | null;
  /** Images found with a copy that an expert dismissed (no copy). */
  copy_move_dismissed?: number;
  /** Of copy_move_images, those an expert confirmed as a copy. */
  copy_move_confirmed?: number;
  /** Set on a withdrawn study (only admins see those). */
  withdrawn: Withdrawal | null;
}

export interface SeriesSummary {
  series_uid: string;
  modality: string;
  description: string;
  num_instances: number;
  job: JobSummary | Job | null;
  /** Why the detector does not score this series (e.g. not CT); empty when it does. */
  not_scored_reason?: string;
  /** About how many slices the gaps in the slice positions leave out (0: none). */
  missing_slices?: number;
  /** Projection radiographs: the latest check for regions copied inside an image; null for other series. */
  copy_move?: CopyMoveCheck | null;
  /** TB/TM/FB/FM labels may be placed on it (they train the CT detector: CT only). */
  labels_apply?: boolean;
}

/** x, y, width, height in the image's pixels. */
export type PixelBox = [number, number, number, number];

/** The same content at `first` and `second` of one image: one place was copied onto the other. */
export interface CopyMoveRegion {
  first: PixelBox;
  second: PixelBox;
  blocks: number;
  /** A copy that was also turned (degrees) or resized (second / first) on the way. */
  rotation?: number;
  scale?: number;
  /** That in words ("turned 25 degrees, resized x1.15"); '' when it was only moved. */
  changed?: string;
}

/** An expert's word on an image the copy-move check found a copy in. */
export interface CopyMoveReview {
  id: number;
  decision: 'confirmed' | 'dismissed';
  reason: string;
  by: string;
  created: string;
}

export interface CopyMoveImage {
  slice_index: number;
  sop_instance_uid: string;
  regions: CopyMoveRegion[];
  /** The latest expert review; null while none. */
  review: CopyMoveReview | null;
}

export interface CopyMoveCheck {
  status: JobStatus;
  error: string;
  images_checked: number;
  /** Each image with a copied region. */
  found: CopyMoveImage[];
}

/** An image with a copy, for the experts' review list. */
export interface CopyMoveFinding extends CopyMoveImage {
  study_uid: string;
  series_uid: string;
  modality: string;
  checked: string;
}

export interface Withdrawal {
  at: string;
  by: string | null;
  reason: string;
}

export interface StudyDetail extends StudySummary {
  series: SeriesSummary[];
  /** The caller may withdraw it (its uploader, admins). */
  can_withdraw: boolean;
}

export interface Instance {
  sop_instance_uid: string;
  instance_number: number | null;
  slice_index: number;
  z: number | null;
  rows: number;
  columns: number;
  /** DICOM PixelSpacing: [between rows, between columns] in mm; null when the header has none. */
  pixel_spacing: [number, number] | null;
}

export interface SliceGap {
  /** The gap lies between this slice_index and the next. */
  after_index: number;
  z_from: number;
  z_to: number;
  /** About how many slices at the usual step would fill it. */
  missing: number;
}

export interface SeriesDetail {
  series_uid: string;
  study_uid: string;
  modality: string;
  description: string;
  instances: Instance[];
  slice_spacing: { usual_step_mm: number | null; gaps: SliceGap[] };
  job: JobSummary | Job | null;
  not_scored_reason?: string;
  copy_move?: CopyMoveCheck | null;
  /** TB/TM/FB/FM labels may be placed on it (they train the CT detector: CT only). */
  labels_apply?: boolean;
}

export interface SliceScore {
  slice_index: number;
  sop_instance_uid: string;
  probs: ClassProbs;
  tamper: number;
}

export interface LocationScore {
  slice_index: number;
  x: number;
  y: number;
  probs: ClassProbs;
  tamper: number;
}

export interface SeriesScores {
  model_version: ModelVersion;
  /** null: the detector found nothing to score (scored_locations 0). */
  verdict: LabelClass | null;
  verdict_score: number | null;
  /** Locations scored (in and around the lungs); null on jobs scored before it was recorded. */
  scored_locations?: number | null;
  /** A location is a finding when its tamper score reaches this (calibrated for a whole series); null on old jobs. */
  flag_threshold: number | null;
  flagged_locations: number | null;
  /** The first and last slice's threshold (they lack a neighbour); null: flag_threshold applies. */
  edge_flag_threshold?: number | null;
  /** Slices scored as edges (a missing neighbour): the first, the last, both sides of each gap. */
  edge_slices?: number[];
  slices: SliceScore[];
  locations: LocationScore[];
}

export type Box = [number, number, number, number];

export interface Label {
  id: number | string;
  study_uid: string;
  series_uid: string;
  sop_instance_uid: string;
  slice_index: number;
  x: number;
  y: number;
  box: Box | null;
  label_class: LabelClass;
  annotator: string;
  created: string;
  comment: string;
  is_mine: boolean;
  version?: number;
  updated?: string;
  queue_item?: number | null;
  is_adjudication?: boolean;
}

/** A distance measured in the viewer and kept with the study; the portal computes the length. */
export interface Measurement {
  id: number;
  series_uid: string;
  sop_instance_uid: string;
  slice_index: number;
  points: [number, number][]; // native pixels, x = column, y = row
  length_mm: number | null; // null: the image has no pixel spacing
  author: string;
  is_mine: boolean;
  created: string;
  updated: string;
}

/** One version of a label, as GET /api/labels/{id}/history lists them (oldest first). */
export interface LabelRevision {
  version: number;
  action: 'create' | 'update' | 'relabel' | 'delete' | 'import';
  label_class: LabelClass;
  slice_index: number;
  x: number;
  y: number;
  box: Box | null;
  comment: string;
  is_deleted: boolean;
  reason: string;
  actor: string | null;
  created: string;
}

export interface RelabelResult {
  label: Label;
  history: LabelRevision[];
}

/** Label ids may come back as numbers or strings; compare them as text. */
export function sameLabelId(a: Label['id'] | null, b: Label['id'] | null): boolean {
  return a !== null && b !== null && String(a) === String(b);
}

export interface NewLabel {
  series_uid: string;
  sop_instance_uid: string;
  slice_index: number;
  x: number;
  y: number;
  box: Box | null;
  label_class: LabelClass;
  comment: string;
  queue_item?: number | string;
}

export interface QueueItem {
  id: number | string;
  study_uid: string;
  series_uid: string;
  slice_index: number;
  x: number | null;
  y: number | null;
  lease_expires: string | null;
  strategy: string;
}

/** One row of a study's access log (GET /api/studies/{uid}/access). */
export interface AccessEvent {
  time: string;
  user: string | null;
  role: string | null;
  action: string;
  details: Record<string, unknown>;
}

/** What POST /api/provenance/studies/{uid}/integrity lists besides the matching images. */
export const INTEGRITY_PROBLEM_KINDS = ['changed', 'missing', 'unverifiable'] as const;
export type IntegrityProblemKind = (typeof INTEGRITY_PROBLEM_KINDS)[number];

export interface IntegrityProblem {
  series_uid: string;
  sop_instance_uid: string;
  slice_index: number | null;
  reason: string;
}

/** The study's images in the PACS compared with what the portal signed at upload. */
export type StudyIntegrity = { ok: boolean; checked: number; matching: number; seconds: number }
  & Record<IntegrityProblemKind, IntegrityProblem[]>;

/** GET /api/provenance/studies/{uid}/copies: another study holding this study's images pixel for pixel. */
export interface StudyCopy {
  study_uid: string;
  patient_id: string;
  study_date: string | null;
  description: string;
  /** This study's images the other holds pixel for pixel, of `images`. */
  shared_images: number;
  images: number;
  /** Per series, the [first, last] slice_index ranges that differ. */
  differing: { series_uid: string; slices: [number, number][] }[];
}

/** GET /api/provenance/series/{uid}/copies/{other study}: each slice beside the copy's image at its place. */
export interface CopySlicePairs {
  other_study_uid: string;
  other_series_uid: string;
  pairs: { slice_index: number; sop_instance_uid: string; other_sop_instance_uid: string | null; identical: boolean }[];
}

/** GET /api/queue/summary: where the review queue stands for the signed-in annotator. */
export interface QueueSummary {
  available: number;
  held: QueueItem | null;
  held_by_others: number;
  awaiting_other_annotators: number;
  adjudication: number;
  done: number;
  my_labels: number;
  retraining: { every_n_labels: number; labels_since_last: number };
  /** Your labels on items read by two or more that now have a final answer, and how many match it. */
  my_agreement: { decided: number; agreed_with_final: number };
}

/** GET /api/labels/agreement (experts, admins): inter-annotator agreement on review-queue items. */
export interface AgreementReport {
  classes: LabelClass[];
  overall: { items_with_two_or_more_labels: number; label_pairs: number; agreement: number | null; kappa: number | null };
  pairs: { annotators: [string, string]; items: number; agreement: number | null; kappa: number | null }[];
  annotators: {
    annotator: string;
    labels: number;
    classes: Record<LabelClass, number>;
    decided: number;
    agreed_with_final: number;
    overruled: number;
    agreement_with_final: number | null;
  }[];
  /** confusion[i][j]: one annotator chose classes[i] where another chose classes[j] (symmetric). */
  confusion: number[][];
  model: { decided: number; agreed_with_final: number; agreement_with_final: number | null };
}

export interface AdjudicationItem extends QueueItem {
  probs: Partial<ClassProbs>;
  status: 'open' | 'adjudication' | 'done' | 'retired';
  consensus_class: LabelClass | '';
  labels: { id: number; annotator: string; label_class: LabelClass; comment: string; is_adjudication: boolean }[];
}

export interface EncryptedShare {
  id: string;
  kind: 'study' | 'claim';
  study_uid: string | null;
  created: string;
  created_by: string | null;
  recipient: string;
  header: { subject?: string; files?: number; [key: string]: unknown };
  archive_size: number;
  key_sha256: string;
  revoked_at: string | null;
  revoked_by: string | null;
}

/** POST /api/shares/encrypted: the only answer that carries the key. */
export interface CreatedShare extends EncryptedShare {
  key: string;
  key_notice: string;
  archive_url: string;
}

/** What opening a share with its key reports (stored share or an uploaded archive). */
export interface ShareCheck {
  ok: boolean;
  header: { kind?: string; subject?: string; files?: number; share_id?: string; [key: string]: unknown };
  files: string[];
  ledger_verified: number;
  problems: string[];
  share?: { id: string; kind: string; created: string; created_by: string | null; recipient: string; archive_size: number };
}

export interface InsurerAccount {
  username: string;
  name: string;
}

/** An insurer who may see a study and use it in their claims. */
export interface InsurerAccess {
  study_uid: string;
  insurer: string;
  name: string;
  granted_by: string | null;
  created: string;
}

export type ModelStatus = 'untrained' | 'candidate' | 'active' | 'rejected' | 'retired';

/** A detector version as /api/models lists it. */
export interface ModelVersionRecord {
  id: number;
  name: string;
  arch: string;
  status: ModelStatus;
  trained: boolean;
  parent: string | null;
  metrics: Record<string, unknown>;
  notes: string;
  created: string;
  promoted_at: string | null;
}

/** What scores claim images (/api/models/single-image): the single-image model, or the series model. */
export interface SingleImageModel {
  in_use: boolean;
  model_kind: 'single-image' | 'series';
  model: string;
  thresholds: Record<string, number>;
  channels?: [window: string, zOffset: number][];
  alpha?: number | null;
  metrics?: Record<string, number>;
  validation_z?: number[];
}

export interface GateDecision {
  promote: boolean;
  metric: string;
  candidate: number;
  baseline: number;
  tolerance: number;
}

export interface RetrainRun {
  id: number;
  status: 'queued' | 'running' | 'promoted' | 'rejected' | 'failed';
  trigger: string;
  n_labels: number;
  base_version: string | null;
  candidate_version: string | null;
  metrics: { gate?: GateDecision; reason?: string } & Record<string, unknown>;
  error: string;
  created: string;
  finished: string | null;
}

export interface UploadBatchStudy {
  study_uid: string;
  patient_id: string;
  patient_name: string;
  description: string;
  verdict: LabelClass | null;
  verdict_score: number | null;
  nothing_to_score: boolean;
  copy_move_images: number | null;
  /** Only admins see a withdrawn study here. */
  withdrawn: Withdrawal | null;
}

/** One upload request: what it stored, what it refused and why, and the studies it added images to. */
export interface UploadBatch {
  id: string;
  created: string;
  uploaded_by: string | null;
  /** staged: waiting for the PACS (retried automatically); stored; failed: nothing could be stored. */
  status: 'staged' | 'stored' | 'failed';
  files_received: number;
  instances_staged: number;
  instances_stored: number;
  errors: UploadError[];
  attempts: number;
  last_error: string;
  studies: UploadBatchStudy[];
}
