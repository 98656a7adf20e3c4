// A time-bounded closed-loop load generator: N workers, each awaiting one operation at a time.
import { msBetween, nowNs, summarize, type Summary } from './stats.ts';

export interface LoadOptions {
  /** Concurrent workers (the benchmark gives each its own pool connection: workers = pool size). */
  workers: number;
  /** Untimed warm-up: operations run but are not counted. */
  warmupMs: number;
  /** The measured window. */
  durationMs: number;
  /** One operation; `seq` counts the worker's own calls from 0. Must throw on failure. */
  op: (worker: number, seq: number) => Promise<void>;
  /** Stop early after this many failures (the run is then reported as broken). */
  maxErrors?: number;
  /** Stops every worker (an interrupted benchmark). */
  signal?: AbortSignal;
}

export interface LoadResult {
  workers: number;
  /** Operations completed inside the measured window. */
  ops: number;
  /** All operations that completed (warm-up included). */
  totalOps: number;
  seconds: number;
  perSecond: number;
  errors: number;
  firstError: unknown;
  /** Per-call latency (ms) of the operations counted in the window. */
  latency: Summary;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const maxErrors = options.maxErrors ?? 50;
  const start = nowNs();
  const measureFrom = start + BigInt(Math.round(options.warmupMs * 1e6));
  const measureTo = measureFrom + BigInt(Math.round(options.durationMs * 1e6));
  const latencies: number[] = [];
  let ops = 0;
  let totalOps = 0;
  let errors = 0;
  let firstError: unknown = undefined;

  const worker = async (w: number) => {
    for (let seq = 0; ; seq++) {
      const t0 = nowNs();
      if (t0 >= measureTo || errors >= maxErrors || options.signal?.aborted) return;
      try {
        await options.op(w, seq);
      } catch (error) {
        errors++;
        firstError ??= error;
        continue;
      }
      const t1 = nowNs();
      totalOps++;
      if (t1 >= measureFrom && t1 <= measureTo) {
        ops++;
        latencies.push(msBetween(t0, t1));
      }
    }
  };

  await Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w)));
  if (options.signal?.aborted) throw new Error('interrupted');
  const seconds = options.durationMs / 1000;
  return {
    workers: options.workers,
    ops,
    totalOps,
    seconds,
    perSecond: ops / seconds,
    errors,
    firstError,
    latency: summarize(latencies),
  };
}
