// One call, as the agent's job runs it: who is billed, what is said when, what the caller's app is told, and
// when the job ends. Framework-light on purpose: the LiveKit room, the AgentSession and JobContext reach it
// through the small ports below (src/agent/worker.ts maps them), so that the whole call can be driven in a
// test with a fake room, a fake speaker and the real billing store.
//
// Every way out of a call ends the job exactly once (endJob), after the goodbye that goes with it has been
// played out (bounded, so a stuck TTS cannot keep the job alive). A billed call is settled by its
// CallController at the moment of the event that ended it, however late the job learns of it.

import type { BillingStore } from '../billing/store.ts';
import type { CallController, CallLog, CallRegistry, EndReason, Timers } from './call-controller.ts';
import type { CallParties } from './call-parties.ts';
import { callAttributes, type CallStateName } from '../shared/call-protocol.ts';
import {
  cutOffText, GUEST_OVER_TEXT, GUEST_REFUSED_TEXT, NO_BALANCE_GOODBYE_TEXT, refusedText, SHUTDOWN_TEXT,
  START_FAILED_TEXT, STORE_DOWN_TEXT, warningText,
} from './call-speech.ts';
import { greetingCallerOf, greetingText, type GreetingCaller } from './greeting.ts';

/** A speech in the agent's queue (the framework's SpeechHandle). */
export interface Speech {
  waitForPlayout(): Promise<void>;
}

export interface SayOptions {
  /** false: the caller cannot talk over it. */
  allowInterruptions: boolean;
  /** false: not added to the model's chat context (the greeting is already there). */
  addToChatCtx?: boolean;
}

/** The agent's voice (the AgentSession). say() queues behind the current speech; interrupt() cuts it. */
export interface Speaker {
  say(text: string, options: SayOptions): Speech;
  interrupt(): void;
}

/** What the voice session needs to be opened for this call. */
export interface SpeakerPlan {
  /** null for a guest, or when only an apology is to be spoken. */
  userId: string | null;
  /** The opening line, for the model's chat context. */
  greeting?: string;
  /** The running billed call (for the billing tools), or null. */
  call: CallController | null;
}

export type CallRoomEvent = 'caller_left' | 'room_closed';

/** The room, as far as the call cares: the caller hung up, or the room went away; `at` is when. */
export interface CallRoomEvents {
  on(event: CallRoomEvent, listener: (at: Date) => void): unknown;
}

/** The agent's own participant attributes, which the caller's app reads (src/shared/call-protocol.ts). */
export interface AttributePublisher {
  setAttributes(attributes: Record<string, string>): Promise<void>;
}

export interface CallJobDeps {
  caller: { identity: string; userId: string | null };
  /** Unique per call: a retried start resumes the same billing session. */
  externalKey: string;
  roomName: string;
  /** Who takes part (the billing session records them); absent: the default agent, no numbers. */
  parties?: CallParties;
  store: BillingStore;
  /** The process's calls (SIGTERM settles them all); the controller is created from it. */
  registry: CallRegistry;
  room: CallRoomEvents;
  attributes: AttributePublisher;
  openSpeaker(plan: SpeakerPlan): Promise<Speaker>;
  /** Ends the job (ctx.shutdown in production). Called once. */
  endJob(reason: string): void;
  /** How long a guest may talk; 0 refuses guests. */
  guestAllowanceSeconds: number;
  /** How long a caller with no time left may stay to hear the packages and buy one. */
  noBalanceGraceSeconds: number;
  timers: Timers;
  clock: () => Date;
  log: CallLog;
  /** The longest wait for a goodbye to be played out. Default 15 s. */
  playoutTimeoutMs?: number;
  /** The same on shutdown, when the container is killed soon after SIGTERM. Default 5 s. */
  shutdownPlayoutTimeoutMs?: number;
}

export class CallJob {
  private readonly deps: CallJobDeps;
  private controller: CallController | null = null;
  /** The billing session runs (join answered with a session). */
  private billing = false;
  private speaker: Speaker | null = null;
  /** Warnings are spoken only after the greeting, which already tells the time left. */
  private greeted = false;
  private goodbye: Speech | undefined;
  /** Set as soon as the call is to end: nothing new starts after it. */
  private closing: string | null = null;
  private endReason: string | null = null;
  private readonly timerHandles = new Set<unknown>();
  private attributeQueue: Promise<void> = Promise.resolve();
  private resolveEnded!: (reason: string) => void;
  /** Resolves with the reason once endJob has been called (or the job was shut down from outside). */
  readonly ended: Promise<string> = new Promise((resolve) => { this.resolveEnded = resolve; });

  constructor(deps: CallJobDeps) {
    this.deps = deps;
  }

  private get shutdownPlayoutMs(): number {
    return this.deps.shutdownPlayoutTimeoutMs ?? 5_000;
  }

  /** The billed call, once created (null for guests). */
  get call(): CallController | null {
    return this.controller;
  }

  /**
   * Sets the call up: bills the caller (or admits the guest), opens the voice and greets. Resolves once the
   * call runs; the job then goes on until endJob. Throws only if the voice session could not be opened.
   */
  async start(): Promise<void> {
    this.publish('starting');
    // Subscribed before anything is awaited: a hang-up during the start is still its own moment.
    this.deps.room.on('caller_left', (at) => this.leave('caller_left', at));
    this.deps.room.on('room_closed', (at) => this.leave('room_closed', at));
    const { userId } = this.deps.caller;
    if (userId === null) await this.startGuest();
    else await this.startBilled(userId);
  }

  /**
   * The worker is stopping (SIGTERM): settle now, at `at`, say a short goodbye and end the job, so that the
   * worker's drain completes long before the container is killed.
   */
  async shutdown(at: Date = this.deps.clock()): Promise<void> {
    if (this.endReason !== null) return;
    this.closing ??= 'worker_shutdown';
    this.goodbye ??= this.interruptAndSay(SHUTDOWN_TEXT);
    await this.settle('worker_shutdown', at);
    await this.end('worker_shutdown', this.goodbye, this.shutdownPlayoutMs);
    await this.ended; // the settlement's own 'ended' may have begun the ending first
  }

  /**
   * The job is being shut down from outside (its shutdown callback): the voice and the room are already gone,
   * so nothing is said; the call is settled, and this resolves once it is.
   */
  async jobShutdown(): Promise<void> {
    this.endReason ??= 'job_shutdown';
    this.closing ??= this.endReason;
    this.clearTimers();
    await this.settle('worker_shutdown', this.deps.clock());
    this.resolveEnded(this.endReason);
  }

  /**
   * The voice session closed on its own (an error, or the framework closing it): the job has nothing left to
   * do. A billed call is settled by the job's shutdown (jobShutdown), unless a room event settled it first.
   */
  sessionClosed(reason: string): void {
    void this.end(`session_${reason}`);
  }

  // ---------- the three kinds of call ----------

  private async startBilled(userId: string): Promise<void> {
    const call = this.deps.registry.create({ store: this.deps.store, log: this.deps.log });
    this.controller = call;
    let caller: GreetingCaller = { kind: 'user', totalSeconds: 0 };
    call.on('started', (event) => { caller = greetingCallerOf(event.state, this.deps.clock()); });
    this.followBilling(call);
    let state;
    try {
      state = await call.join({ userId, externalKey: this.deps.externalKey, roomName: this.deps.roomName, ...this.deps.parties });
    } catch (error) {
      this.deps.log.error({ err: error instanceof Error ? error.message : String(error) }, 'the call could not be started');
      if (this.closing) return void this.end(this.closing);
      // Only the apology: no model needed to say it.
      const speaker = await this.open({ userId: null, call: null });
      return void this.end('start_failed', speaker?.say(START_FAILED_TEXT, { allowInterruptions: false }));
    }
    if (state === null) return this.startNoBalance(userId);
    this.billing = true;
    if (this.closing) return; // left during the start: the controller settles, the job is ending
    const greeting = greetingText(caller);
    const speaker = await this.open({ userId, greeting, call });
    if (!speaker) return;
    speaker.say(greeting, { allowInterruptions: true, addToChatCtx: false });
    this.greeted = true;
  }

  /**
   * Nothing to pay for the call: why, in the plan's terms (suspended, the cap reached, no time left), the
   * packages, time to buy one (a purchase does not start billing here), then goodbye.
   */
  private async startNoBalance(userId: string): Promise<void> {
    this.publish('no_balance', { remainingSeconds: 0 });
    if (this.closing) return;
    const grace = this.deps.noBalanceGraceSeconds;
    // The store's own answers, each bounded by its timeout; without them the plain no-time words still fit.
    const [tiers, usage] = await Promise.all([
      this.deps.store.listPricingTiers().catch(() => []),
      this.deps.store.getUsageCurrent(userId).catch(() => null),
    ]);
    const text = refusedText(usage, tiers, grace);
    const speaker = await this.open({ userId, greeting: text, call: null });
    if (!speaker) return;
    const offer = speaker.say(text, { allowInterruptions: true, addToChatCtx: false });
    if (grace === 0) return void this.end('no_balance', offer);
    this.after(grace, () => this.end('no_balance', speaker.say(NO_BALANCE_GOODBYE_TEXT, { allowInterruptions: false })));
  }

  /** Guests are not billed; the allowance bounds them, and 0 refuses them. */
  private async startGuest(): Promise<void> {
    const allowance = this.deps.guestAllowanceSeconds;
    if (allowance === 0) {
      this.publish('guest', { remainingSeconds: 0 });
      const speaker = await this.open({ userId: null, call: null });
      return void this.end('guest_refused', speaker?.say(GUEST_REFUSED_TEXT, { allowInterruptions: false }));
    }
    this.publish('guest', { remainingSeconds: allowance, meteredAt: this.deps.clock() });
    const greeting = greetingText({ kind: 'guest' });
    const speaker = await this.open({ userId: null, greeting, call: null });
    if (!speaker) return;
    speaker.say(greeting, { allowInterruptions: true, addToChatCtx: false });
    this.greeted = true;
    this.after(allowance, () => this.end('guest_allowance', speaker.say(GUEST_OVER_TEXT, { allowInterruptions: false })));
  }

  /** What the billed call's controller decides becomes speech, attributes and the end of the job. */
  private followBilling(call: CallController): void {
    call.on('metered', ({ state, remainingSeconds }) => {
      this.publish('active', { remainingSeconds, meteredAt: state.last_metered_at, sessionId: state.session_id });
    });
    // Queued behind the current speech, never cutting it; the caller cannot talk over it.
    call.on('warning', ({ remainingSeconds }) => {
      if (this.greeted && !this.closing) this.speaker?.say(warningText(call.state, remainingSeconds), { allowInterruptions: false });
    });
    call.on('cut_off', ({ state }) => {
      this.closing ??= 'balance_exhausted';
      this.publish('cut_off', { remainingSeconds: 0, sessionId: state.session_id });
      this.goodbye ??= this.interruptAndSay(cutOffText(state));
    });
    call.on('store_unreachable', () => {
      this.closing ??= 'store_unreachable';
      this.publish('store_unreachable', { sessionId: call.sessionId });
      this.goodbye ??= this.interruptAndSay(STORE_DOWN_TEXT);
      // The caller stops talking after the goodbye, not after the settlement: its retries (then the server's
      // reaper) go on without holding an unbilled call open. The job's shutdown waits for them.
      void this.end('store_unreachable', this.goodbye);
    });
    call.on('ended', ({ reason, settled, state }) => {
      this.deps.log.info({ reason, settled, billedSeconds: state?.billed_seconds }, 'call settled');
      this.publish('ended', { sessionId: call.sessionId });
      // Settled by shutdownAll without this job being told (SIGTERM reaching the registry only).
      if (reason === 'worker_shutdown' && this.endReason === null) this.goodbye ??= this.interruptAndSay(SHUTDOWN_TEXT);
      this.closing ??= reason;
      void this.end(reason, this.goodbye, reason === 'worker_shutdown' ? this.shutdownPlayoutMs : undefined);
    });
  }

  // ---------- leaving ----------

  /** The caller hung up or the room went away: settle at that moment and end the job. */
  private leave(reason: Extract<EndReason, 'caller_left' | 'room_closed'>, at: Date): void {
    this.deps.log.info({ reason, at }, reason === 'caller_left' ? 'caller left' : 'room closed');
    this.closing ??= reason;
    void this.settle(reason, at);
    void this.end(reason);
  }

  private async settle(reason: EndReason, at: Date): Promise<void> {
    await this.controller?.leave(reason, at).catch((error: unknown) =>
      this.deps.log.error({ err: error instanceof Error ? error.message : String(error) }, 'leave failed'));
  }

  /** Ends the job once, after `speech` (a goodbye) has been played out or the wait has timed out. */
  private async end(reason: string, speech?: Speech, timeoutMs = this.deps.playoutTimeoutMs ?? 15_000): Promise<void> {
    if (this.endReason !== null) return;
    this.endReason = reason;
    this.closing ??= reason;
    this.clearTimers();
    await this.within(speech?.waitForPlayout(), timeoutMs);
    if (!this.billing) this.publish('ended');
    // Sent before the agent leaves the room, or the app would never see it.
    await this.within(this.attributeQueue, 2_000);
    this.deps.log.info({ reason }, 'ending the job');
    this.deps.endJob(reason);
    this.resolveEnded(reason);
  }

  // ---------- helpers ----------

  /** Opens the voice, unless the call ended meanwhile (then there is nobody to talk to). */
  private async open(plan: SpeakerPlan): Promise<Speaker | null> {
    const speaker = await this.deps.openSpeaker(plan);
    this.speaker = speaker;
    return this.closing ? null : speaker;
  }

  private interruptAndSay(text: string): Speech | undefined {
    if (!this.speaker) return undefined;
    this.speaker.interrupt();
    return this.speaker.say(text, { allowInterruptions: false });
  }

  /** In order, one at a time: a later state must not be overwritten by an earlier one still in flight. */
  private publish(state: CallStateName, details: { remainingSeconds?: number | null; meteredAt?: Date; sessionId?: string | null } = {}): void {
    const attributes = callAttributes({ state, ...details });
    this.attributeQueue = this.attributeQueue
      .then(() => this.deps.attributes.setAttributes(attributes))
      .catch((error: unknown) =>
        this.deps.log.warn({ state, err: error instanceof Error ? error.message : String(error) }, 'publishing the call attributes failed'));
  }

  private after(seconds: number, fn: () => Promise<void>): void {
    const handle = this.deps.timers.setTimeout(() => {
      this.timerHandles.delete(handle);
      void fn();
    }, seconds * 1000);
    this.timerHandles.add(handle);
  }

  private clearTimers(): void {
    for (const handle of this.timerHandles) this.deps.timers.clearTimeout(handle);
    this.timerHandles.clear();
  }

  private async within(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
    if (!promise) return;
    let handle: unknown;
    await Promise.race([
      promise.catch(() => undefined),
      new Promise<void>((resolve) => { handle = this.deps.timers.setTimeout(resolve, ms); }),
    ]);
    this.deps.timers.clearTimeout(handle);
  }
}
