// Simulated time. Events fire in time order; work they start (a ping, a cron tick) runs
// as real async code until it finishes or sleeps in simulated time, and the clock moves
// on only when no work is running. So at most one piece of work advances at a time and
// a seed replays the same interleaving, while a tick that waits out its settle step
// really does overlap the pings and ticks that arrive meanwhile.

interface ScheduledEvent {
  at: number;
  order: number;
  fire: () => void;
}

/** Real milliseconds one piece of work may run without sleeping before it is called stuck. */
const STUCK_AFTER_MS = 30_000;

export class Scheduler {
  now: number;
  private readonly heap: ScheduledEvent[] = [];
  private order = 0;
  private running = 0;
  private idleWaiters: Array<() => void> = [];
  readonly failures: string[] = [];

  constructor(start: number) {
    this.now = start;
  }

  /** Runs `fire` at simulated time `at` (never before the current time). */
  at(at: number, fire: () => void): void {
    this.push({ at: Math.max(at, this.now), order: this.order++, fire });
  }

  /** Starts async work now; the clock waits for it until it finishes or sleeps. */
  spawn(label: string, task: () => Promise<void>): void {
    this.running++;
    void task()
      .catch((error: unknown) => {
        this.failures.push(`${label} at ${new Date(this.now).toISOString()}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      })
      .finally(() => this.release());
  }

  /** Sleeps in simulated time: the clock may move on while this work waits. */
  readonly sleep = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      this.at(this.now + Math.max(0, ms), () => {
        this.running++;
        resolve();
      });
      this.release();
    });

  /** Fires every event up to `end`, letting the work each one starts settle first. */
  async runUntil(end: number): Promise<void> {
    for (;;) {
      const next = this.heap[0];
      if (next === undefined || next.at > end) break;
      this.pop();
      this.now = next.at;
      next.fire();
      await this.idle();
    }
    this.now = end;
  }

  private release(): void {
    this.running--;
    if (this.running === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`simulated work stuck at ${new Date(this.now).toISOString()}`)), STUCK_AFTER_MS);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private push(event: ScheduledEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent];
      if (above === undefined || !before(event, above)) break;
      heap[i] = above;
      i = parent;
    }
    heap[i] = event;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      let smallestEvent = last;
      const l = heap[left];
      if (l !== undefined && before(l, smallestEvent)) {
        smallest = left;
        smallestEvent = l;
      }
      const r = heap[right];
      if (r !== undefined && before(r, smallestEvent)) {
        smallest = right;
        smallestEvent = r;
      }
      if (smallest === i) break;
      heap[i] = smallestEvent;
      i = smallest;
    }
    heap[i] = last;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}
