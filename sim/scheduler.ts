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
/** Event-loop turns without any activity after which running work is taken to wait on simulated work. */
const QUIET_TURNS = 3;

export class Scheduler {
  now: number;
  private readonly heap: ScheduledEvent[] = [];
  private order = 0;
  private running = 0;
  /** Bumped by every spawn, release and event: how idle() tells waiting work from working work. */
  private activity = 0;
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
    this.activity++;
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
    this.activity++;
  }

  /**
   * Waits until no work runs, or until what still "runs" only awaits other simulated work
   * (a run waiting for another's delivery): several turns of the event loop with nothing
   * spawned, released or put to sleep. Then the clock may move on, or nothing ever would.
   */
  private async idle(): Promise<void> {
    const began = Date.now();
    let seen = this.activity;
    let quietTurns = 0;
    while (this.running > 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.activity !== seen) {
        seen = this.activity;
        quietTurns = 0;
      } else if (++quietTurns >= QUIET_TURNS) {
        return;
      }
      if (Date.now() - began > STUCK_AFTER_MS) throw new Error(`simulated work stuck at ${new Date(this.now).toISOString()}`);
    }
  }

  private push(event: ScheduledEvent): void {
    this.activity++;
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
