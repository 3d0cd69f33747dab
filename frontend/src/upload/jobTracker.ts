import { api } from '../api';
import type { Job, JobSummary } from '../types';

const POLL_MS = 1500;

/** Polls scoring jobs until they finish; one timer for all jobs. */
export class JobTracker {
  private readonly jobs = new Map<string, JobSummary | Job>();
  private timer: number | null = null;
  private stopped = false;

  constructor(private readonly onUpdate: (jobs: (JobSummary | Job)[]) => void) {}

  add(jobs: JobSummary[]): void {
    for (const job of jobs) {
      const key = String(job.id);
      if (!this.jobs.has(key)) this.jobs.set(key, job);
    }
    this.onUpdate(this.list());
    this.schedule();
  }

  list(): (JobSummary | Job)[] {
    return [...this.jobs.values()];
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) window.clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped || this.timer !== null) return;
    if (!this.list().some(isActive)) return;
    this.timer = window.setTimeout(() => void this.poll(), POLL_MS);
  }

  private async poll(): Promise<void> {
    const active = this.list().filter(isActive);
    await Promise.all(
      active.map(async (job) => {
        try {
          this.jobs.set(String(job.id), await api.job(job.id));
        } catch {
          // Transient failure: keep the last known state and try again next round.
        }
      }),
    );
    this.timer = null;
    if (this.stopped) return;
    this.onUpdate(this.list());
    this.schedule();
  }
}

export function isActive(job: JobSummary): boolean {
  return job.status === 'queued' || job.status === 'running';
}
