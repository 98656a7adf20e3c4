// The voice agent's call controller: bills one call against the prepaid balance, framework-free. The agent's
// LiveKit glue calls join() when the caller arrives and leave() when they go; the controller meters each
// increment as it begins, warns before the time runs out, cuts the call off at the last paid second, and
// rides out a billing-store outage without losing a billed second.
//
// The store is the truth: every decision follows its last answer (covered_until, payable_until), because
// another call of the same user may drain the shared balance at any moment.

import type { BillingStore, SessionState } from '../billing/store.ts';
import { BillingError, isBillingError, toBillingError } from '../billing/errors.ts';
import {
  backoffMs, crossedThresholds, isExhausted, nextMeterAt, nextWarningAt, remainingMs,
  type BackoffOptions, type CoverageFacts,
} from './meter-schedule.ts';

/**
 * A scheduler. `fn` may return a promise: a real scheduler ignores it, a test's fake one awaits it so that
 * the work a timer starts is finished before time moves on.
 */
export interface Timers {
  setTimeout(fn: () => unknown, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's own timers. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(() => void fn(), Math.min(Math.max(0, ms), 2_147_483_647)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The subset of a pino logger the controller uses. */
export interface CallLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLog: CallLog = { info() {}, warn() {}, error() {} };

export type EndReason = 'caller_left' | 'room_closed' | 'worker_shutdown' | 'balance_exhausted' | 'store_unreachable';

export interface CallControllerOptions {
  /** Warn when this many seconds of talk are left (each once per call). Default [300, 60]. */
  warnAtSeconds: number[];
  /** Meter this long after each increment boundary, so that the next increment has begun. Default 500 ms. */
  meterLeadMs: number;
  /** Backoff between retries of a failed meter or settlement. Default 1 s, 2 s, 4 s, … capped at 8 s. */
  storeRetry: BackoffOptions;
  /** How long past covered_until a call may go on while the store cannot be reached. Default 60 s. */
  storeOutageGraceSeconds: number;
  /** Attempts to settle a call before leaving it to the server's reaper. Default 5. */
  settleAttempts: number;
  /**
   * A store call unanswered this long counts as failed (storage_unavailable), like one that was refused: a hung
   * store must not hold the meter, and with it the cut-off, back. Default 5 s (STORE_TIMEOUT_MS).
   */
  storeCallTimeoutMs: number;
}

export const DEFAULT_CALL_OPTIONS: CallControllerOptions = {
  warnAtSeconds: [300, 60],
  meterLeadMs: 500,
  storeRetry: { initialMs: 1000, maxMs: 8000, factor: 2 },
  storeOutageGraceSeconds: 60,
  settleAttempts: 5,
  storeCallTimeoutMs: 5000,
};

export interface CallControllerDeps {
  store: BillingStore;
  clock?: () => Date;
  timers?: Timers;
  log?: CallLog;
  options?: Partial<CallControllerOptions>;
}

export interface JoinInput {
  userId: string;
  /** Unique per call (e.g. the LiveKit room sid plus participant): a retried join resumes the same session. */
  externalKey: string;
  roomName: string;
  /** The agent serving the call ('mindbot' when absent) and, for a phone caller, the numbers (src/agent/call-parties.ts). */
  agentName?: string | undefined;
  callFrom?: string | null | undefined;
  callTo?: string | null | undefined;
}

/** What the controller tells the agent. */
export interface CallEvents {
  /**
   * The session runs; remainingSeconds is the talk time left: until the moment the call will be cut off (what
   * is paid for it plus what the balance can still pay before its cards expire).
   */
  started: { state: SessionState; remainingSeconds: number };
  /**
   * The store answered for a running call (after the start and after each meter): remainingSeconds is the talk
   * time left at that answer, as in 'started'. The caller's app follows these, not its own guess.
   */
  metered: { state: SessionState; remainingSeconds: number };
  /**
   * Nothing could pay for the call's first increment: it was not started. message is the store's reason, in the
   * terms of the user's plan (migrations/017: no time left, the plan suspended for an unpaid invoice, the
   * spending cap reached).
   */
  no_balance: { userId: string; message: string };
  /** The talk time left has reached a threshold (each threshold at most once per call). */
  warning: { remainingSeconds: number; thresholdSeconds: number };
  /** The paid time is over: say goodbye. The settlement follows. */
  cut_off: { coveredUntil: Date; state: SessionState };
  /** The billing store cannot be reached past the grace: the call is being ended. */
  store_unreachable: { since: Date; error: string };
  /** The call is over. settled is false when the store never confirmed it (its reaper settles it then). */
  ended: { reason: string; state: SessionState | null; settled: boolean };
}

export type CallEventName = keyof CallEvents;
type Listener<K extends CallEventName> = (payload: CallEvents[K]) => void;

// The phase type lives in src/shared: the tools read it too, and they may not import the agent.
export type { CallPhase } from '../shared/call-protocol.ts';
import type { CallPhase } from '../shared/call-protocol.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function isTransient(error: unknown): boolean {
  return toBillingError(error).code === 'storage_unavailable';
}

/**
 * meter and settle are store calls, run one at a time through the chain. warn and grace only read the last
 * answer and run at their moment, even while a store call is outstanding.
 */
type TimerKind = 'meter' | 'warn' | 'settle' | 'grace';

export class CallController {
  readonly options: CallControllerOptions;
  private readonly store: BillingStore;
  private readonly clock: () => Date;
  private readonly timers: Timers;
  private readonly log: CallLog;
  private readonly listeners = new Map<CallEventName, Set<Listener<CallEventName>>>();
  private readonly handles = new Map<TimerKind, unknown>();
  private readonly warned = new Set<number>();
  /** Every store call runs one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();

  private phaseValue: CallPhase = 'idle';
  private last: SessionState | null = null;
  private outageSince: Date | null = null;
  private meterFailures = 0;
  /** Set once the call is to end (leave, cut-off, outage): no more meters or warnings. */
  private stopping = false;
  private readonly done: Deferred<SessionState | null> = deferred();
  private ending: { reason: EndReason; endedAt: Date; attempts: number } | null = null;

  constructor(deps: CallControllerDeps) {
    this.store = deps.store;
    this.clock = deps.clock ?? (() => new Date());
    this.timers = deps.timers ?? realTimers;
    this.log = deps.log ?? silentLog;
    this.options = {
      ...DEFAULT_CALL_OPTIONS,
      ...deps.options,
      storeRetry: { ...DEFAULT_CALL_OPTIONS.storeRetry, ...deps.options?.storeRetry },
    };
  }

  get phase(): CallPhase {
    return this.phaseValue;
  }

  /** The store's last answer about this call. */
  get state(): SessionState | null {
    return this.last;
  }

  get sessionId(): string | null {
    return this.last?.session_id ?? null;
  }

  on<K extends CallEventName>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<CallEventName>);
    return () => set.delete(listener as Listener<CallEventName>);
  }

  /**
   * Starts the metered session: the first increment is charged up front. Answers null (after 'no_balance')
   * when the user has no time left; other store errors are thrown and nothing was started.
   */
  join(input: JoinInput): Promise<SessionState | null> {
    if (this.phaseValue !== 'idle' || this.stopping) {
      return Promise.reject(new Error(`join() on a call that is ${this.phaseValue}${this.stopping ? ' (left)' : ''}`));
    }
    this.phaseValue = 'starting';
    return this.enqueue(async () => {
      let state: SessionState;
      try {
        state = await this.ask(() => this.store.startSession(input));
      } catch (error) {
        this.phaseValue = 'not_started';
        this.done.resolve(null);
        if (isBillingError(error, 'insufficient_balance')) {
          this.log.info({ userId: input.userId, reason: error.message }, 'call refused: nothing to pay for it');
          this.emit('no_balance', { userId: input.userId, message: error.message });
          return null;
        }
        this.log.error({ userId: input.userId, err: describe(error) }, 'call could not be started');
        throw error;
      }
      this.phaseValue = 'active';
      this.last = state;
      this.log.info({ sessionId: state.session_id, userId: input.userId }, 'call started');
      const remainingSeconds = this.remainingSecondsAt(state);
      this.emit('started', { state, remainingSeconds });
      this.emit('metered', { state, remainingSeconds });
      if (this.stopping) return state; // leave() came during the start: it settles next
      await this.apply(state);
      return state;
    });
  }

  /**
   * The call is over for an outside reason (the caller left, the room closed, the worker stops). Settles it
   * once at `at`, the moment of the event (the worker may learn of it late). A repeated call answers the
   * first one's settlement.
   */
  leave(reason: EndReason = 'caller_left', at: Date = this.clock()): Promise<SessionState | null> {
    if (this.stopping) return this.done.promise;
    this.stopping = true;
    this.cancelTimers();
    void this.enqueue(async () => {
      if (this.phaseValue === 'active') await this.beginSettlement(reason, at);
      else if (this.phaseValue === 'idle' || this.phaseValue === 'not_started') this.done.resolve(null);
    }).catch((error) => this.log.error({ err: describe(error) }, 'leave failed'));
    return this.done.promise;
  }

  /** Resolves once the call is settled (or given up to the reaper); null if it never started. */
  finished(): Promise<SessionState | null> {
    return this.done.promise;
  }

  // ---------- internals ----------

  private nowMs(): number {
    return this.clock().getTime();
  }

  private remainingSecondsAt(state: SessionState): number {
    return Math.round(remainingMs(this.facts(state), this.nowMs()) / 1000);
  }

  private facts(state: SessionState): CoverageFacts {
    return { coveredUntilMs: state.covered_until.getTime(), payableUntilMs: state.payable_until.getTime() };
  }

  private emit<K extends CallEventName>(event: K, payload: CallEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<K>)(payload);
      } catch (error) {
        this.log.error({ event, err: describe(error) }, 'call event listener threw');
      }
    }
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.chain.then(op);
    this.chain = run.then(() => undefined, () => undefined);
    return run;
  }

  private schedule(kind: TimerKind, atMs: number, op: () => Promise<void>): void {
    this.cancel(kind);
    const queued = kind === 'meter' || kind === 'settle';
    const handle = this.timers.setTimeout(() => {
      if (this.handles.get(kind) !== handle) return undefined;
      this.handles.delete(kind);
      return (queued ? this.enqueue(op) : op()).catch((error) => this.log.error({ kind, err: describe(error) }, 'call timer failed'));
    }, Math.max(0, atMs - this.nowMs()));
    this.handles.set(kind, handle);
  }

  /**
   * A store call with the controller's own deadline, on its timers: past it the call counts as failed, and
   * what the store answers later is ignored (its next answer is the truth again).
   */
  private ask<T>(call: () => Promise<T>): Promise<T> {
    const ms = this.options.storeCallTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const handle = this.timers.setTimeout(() => {
        if (done) return;
        done = true;
        reject(new BillingError('storage_unavailable', `the billing store did not answer within ${ms} ms`));
      }, ms);
      call().then(
        (value) => {
          if (done) return;
          done = true;
          this.timers.clearTimeout(handle);
          resolve(value);
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          this.timers.clearTimeout(handle);
          reject(error);
        },
      );
    });
  }

  private cancel(kind: TimerKind): void {
    const handle = this.handles.get(kind);
    if (handle !== undefined) {
      this.timers.clearTimeout(handle);
      this.handles.delete(kind);
    }
  }

  private cancelTimers(): void {
    for (const kind of [...this.handles.keys()]) if (kind !== 'settle') this.cancel(kind);
  }

  /** Acts on an answer from the store: warn, cut off, or schedule the next meter. */
  private async apply(state: SessionState): Promise<void> {
    this.last = state;
    if (state.status !== 'active') {
      // Settled elsewhere (the reaper, an administrator): nothing left to bill.
      this.cancelTimers();
      this.phaseValue = 'ended';
      this.emit('ended', { reason: state.end_reason ?? state.status, state, settled: true });
      this.stopping = true;
      this.done.resolve(state);
      return;
    }
    if (this.stopping) return;
    const now = this.nowMs();
    const facts = this.facts(state);
    this.checkWarnings(facts, now);
    if (isExhausted(facts) && now >= facts.coveredUntilMs) {
      await this.cutOff(state);
      return;
    }
    this.schedule('meter', nextMeterAt(facts, now, this.options.meterLeadMs), () => this.meter());
    this.scheduleWarning(facts, now);
    this.scheduleGrace(facts);
  }

  /**
   * The call never runs more than the grace past its paid time without a fresh answer, however long a store
   * call hangs: at covered_until + grace it ends, without waiting for the store call in flight (the settlement
   * queues behind it).
   */
  private scheduleGrace(facts: CoverageFacts): void {
    const deadline = facts.coveredUntilMs + this.options.storeOutageGraceSeconds * 1000;
    this.schedule('grace', deadline, async () => {
      if (this.stopping || this.phaseValue !== 'active') return;
      const now = new Date(this.nowMs());
      this.outageSince ??= now;
      this.log.error({ sessionId: this.last?.session_id, since: this.outageSince }, 'billing store unanswered past the grace: ending the call');
      this.stopping = true;
      this.cancelTimers();
      this.emit('store_unreachable', { since: this.outageSince, error: 'no answer from the billing store within the grace' });
      await this.enqueue(() => this.beginSettlement('store_unreachable', now));
    });
  }

  private checkWarnings(facts: CoverageFacts, now: number): void {
    const left = remainingMs(facts, now);
    const crossed = crossedThresholds(this.options.warnAtSeconds, this.warned, left);
    if (crossed.length === 0) return;
    for (const threshold of crossed) this.warned.add(threshold);
    // Several at once (a call that starts with little time): one warning, of the nearest threshold.
    const thresholdSeconds = crossed[crossed.length - 1]!;
    this.emit('warning', { remainingSeconds: Math.round(left / 1000), thresholdSeconds });
  }

  private scheduleWarning(facts: CoverageFacts, now: number): void {
    const at = nextWarningAt(this.options.warnAtSeconds, this.warned, facts, now);
    if (at === null) {
      this.cancel('warn');
      return;
    }
    this.schedule('warn', at, async () => {
      if (this.stopping || !this.last) return;
      const current = this.facts(this.last);
      this.checkWarnings(current, this.nowMs());
      this.scheduleWarning(current, this.nowMs());
    });
  }

  private async meter(): Promise<void> {
    if (this.stopping || this.phaseValue !== 'active' || !this.last) return;
    let state: SessionState;
    try {
      const sessionId = this.last.session_id;
      state = await this.ask(() => this.store.meterSession(sessionId));
    } catch (error) {
      await this.meterFailed(error);
      return;
    }
    if (this.stopping) {
      // The call ended while this meter was in flight (the grace ran out, the caller left): its settlement follows.
      this.last = state;
      return;
    }
    if (this.outageSince) {
      this.log.info({ sessionId: state.session_id, since: this.outageSince, charged: state.charged_seconds },
        'billing store reachable again');
    }
    this.outageSince = null;
    this.meterFailures = 0;
    if (state.status === 'active') this.emit('metered', { state, remainingSeconds: this.remainingSecondsAt(state) });
    await this.apply(state);
  }

  /**
   * The meter failed. The call goes on (on the last answer) while within the grace past covered_until; the
   * retries charge everything that has begun once the store answers again.
   */
  private async meterFailed(error: unknown): Promise<void> {
    const last = this.last!;
    const now = this.nowMs();
    this.outageSince ??= new Date(now);
    this.meterFailures += 1;
    const facts = this.facts(last);
    const level = isTransient(error) ? 'warn' : 'error';
    this.log[level]({ sessionId: last.session_id, attempt: this.meterFailures, err: describe(error) }, 'meter failed');
    if (this.stopping) return;
    if (isExhausted(facts) && now >= facts.coveredUntilMs) {
      // The last answer said the balance was gone; the paid time is over whether or not the store answers.
      await this.cutOff(last);
      return;
    }
    const deadline = facts.coveredUntilMs + this.options.storeOutageGraceSeconds * 1000;
    if (now >= deadline) {
      this.cancel('grace');
      this.emit('store_unreachable', { since: this.outageSince, error: describe(error) });
      await this.beginSettlement('store_unreachable', new Date(now));
      return;
    }
    let at = Math.min(now + backoffMs(this.options.storeRetry, this.meterFailures), deadline);
    if (isExhausted(facts) && facts.coveredUntilMs > now) at = Math.min(at, facts.coveredUntilMs);
    this.schedule('meter', at, () => this.meter());
    this.scheduleWarning(facts, now);
  }

  private async cutOff(state: SessionState): Promise<void> {
    this.log.info({ sessionId: state.session_id, coveredUntil: state.covered_until }, 'balance exhausted: cutting off');
    this.emit('cut_off', { coveredUntil: state.covered_until, state });
    // Never a second beyond what was paid.
    await this.beginSettlement('balance_exhausted', state.covered_until);
  }

  /** Runs inside the chain. Ends the call once; the settlement is retried on its own timer. */
  private async beginSettlement(reason: EndReason, endedAt: Date): Promise<void> {
    this.stopping = true;
    if (this.ending) return;
    this.cancelTimers();
    this.phaseValue = 'ending';
    this.ending = { reason, endedAt, attempts: 0 };
    await this.settle();
  }

  private async settle(): Promise<void> {
    const ending = this.ending!;
    const sessionId = this.last!.session_id;
    ending.attempts += 1;
    try {
      const state = await this.ask(() => this.store.endSession({ sessionId, reason: ending.reason, endedAt: ending.endedAt }));
      this.finish(state, true);
    } catch (error) {
      const retry = isTransient(error) && ending.attempts < this.options.settleAttempts;
      this.log[retry ? 'warn' : 'error'](
        { sessionId, reason: ending.reason, attempt: ending.attempts, err: describe(error) },
        retry ? 'settlement failed: retrying' : 'settlement failed: left to the server reaper',
      );
      if (retry) {
        this.schedule('settle', this.nowMs() + backoffMs(this.options.storeRetry, ending.attempts), () => this.settle());
      } else {
        this.finish(null, false);
      }
    }
  }

  private finish(state: SessionState | null, settled: boolean): void {
    const reason = this.ending!.reason;
    if (state) this.last = state;
    this.phaseValue = 'ended';
    this.cancelTimers();
    this.log.info({ sessionId: this.last?.session_id, reason, settled, billed: state?.billed_seconds }, 'call ended');
    this.emit('ended', { reason, state, settled });
    this.done.resolve(state);
  }
}

/** The calls a worker runs, so that SIGTERM settles every one of them. */
export class CallRegistry {
  private readonly calls = new Set<CallController>();

  constructor(private readonly deps: CallControllerDeps) {}

  /** A new controller on the registry's store, clock and timers, tracked until it ends. */
  create(overrides: Partial<CallControllerDeps> = {}): CallController {
    return this.track(new CallController({ ...this.deps, ...overrides }));
  }

  track(controller: CallController): CallController {
    this.calls.add(controller);
    void controller.finished().then(() => this.calls.delete(controller));
    return controller;
  }

  get size(): number {
    return this.calls.size;
  }

  /** Settles every open call (each once) and waits for all of them. */
  async shutdownAll(reason: EndReason = 'worker_shutdown', at?: Date): Promise<Array<SessionState | null>> {
    const open = [...this.calls];
    return Promise.all(open.map((call) => call.leave(reason, at)));
  }
}
