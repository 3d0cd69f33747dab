/**
 * Asks the server again and again while something it waits for is not finished (a scoring job, a copy-move
 * check, an upload kept for later): `step` runs `ms` after each `schedule()` and says whether to go on. A
 * step that throws (a network blip) is tried again. After `stop()` (the page went away) nothing runs any
 * more, also when a step was under way.
 */
export class Poller {
  private timer: number | undefined;
  private stopped = false;

  constructor(private readonly step: () => Promise<boolean>, private readonly ms: number) {}

  /** Run the step `ms` from now, replacing a run already planned. */
  schedule(): void {
    if (this.stopped) return;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.run(), this.ms);
  }

  /** Plan nothing more for now (a later `schedule()` starts again). */
  pause(): void {
    window.clearTimeout(this.timer);
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private async run(): Promise<void> {
    let again: boolean;
    try {
      again = await this.step();
    } catch {
      again = true;
    }
    if (again) this.schedule();
  }
}
