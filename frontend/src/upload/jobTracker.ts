import { api } from '../api';
import { Poller } from '../poller';
import type { Job, JobSummary } from '../types';

const POLL_MS = 1500;

/** Polls scoring jobs until they finish; one timer for all jobs. */
export class JobTracker {
  private readonly jobs = new Map<string, JobSummary | Job>();
  private readonly poller = new Poller(() => this.poll(), POLL_MS);

  constructor(private readonly onUpdate: (jobs: (JobSummary | Job)[]) => void) {}

  add(jobs: JobSummary[]): void {
    for (const job of jobs) {
      const key = String(job.id);
      if (!this.jobs.has(key)) this.jobs.set(key, job);
    }
    this.onUpdate(this.list());
    if (this.list().some(isActive)) this.poller.schedule();
  }

  list(): (JobSummary | Job)[] {
    return [...this.jobs.values()];
  }

  stop(): void {
    this.poller.stop();
  }

  /** Asks for the jobs still active; goes on while one is. */
  private async poll(): Promise<boolean> {
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
    if (this.poller.isStopped) return false;
    this.onUpdate(this.list());
    return this.list().some(isActive);
  }
}

export function isActive(job: JobSummary): boolean {
  return job.status === 'queued' || job.status === 'running';
}
