import type { Timers } from '../../src/agent/call-controller.ts';
import type { TestClock } from './test-db.ts';

interface Pending {
  id: number;
  at: number;
  fn: () => unknown;
}

/**
 * A scheduler on a TestClock. advance() moves the clock to each due timer in order, runs it and awaits what
 * it returns (the controller's store calls), then moves on; nothing runs on its own.
 */
export class FakeTimers implements Timers {
  private pending: Pending[] = [];
  private nextId = 1;

  constructor(private readonly clock: TestClock) {}

  setTimeout(fn: () => unknown, ms: number): number {
    const id = this.nextId++;
    this.pending.push({ id, at: this.clock.now().getTime() + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== handle);
  }

  get size(): number {
    return this.pending.length;
  }

  /** Moves the clock `seconds` ahead, firing every timer due on the way, in order. */
  async advance(seconds: number): Promise<void> {
    await this.advanceTo(new Date(this.clock.now().getTime() + seconds * 1000));
  }

  async advanceTo(target: Date): Promise<void> {
    const end = target.getTime();
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      const due = this.pending
        .filter((p) => p.at <= end)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      if (due.at > this.clock.now().getTime()) this.clock.set(new Date(due.at));
      await due.fn();
    }
    if (end > this.clock.now().getTime()) this.clock.set(new Date(end));
  }
}
