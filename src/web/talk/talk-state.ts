// The talk screen's state machine, pure: what the button, POST /token and the LiveKit room have said so far,
// folded into the one state the screen shows. No clock and no I/O here, so it is tested with plain event lists.
//
// Time left follows the billing meter: the agent publishes remaining_seconds and metered_at after every answer
// of the store, the screen counts down from the moment that answer arrived and re-anchors at the next one.
// The browser's clock only ever bridges the gap between two answers.
import {
  CALL_ATTRIBUTES, readCallAttributes, secondsLeft, type CallReading, type CallStateName,
} from '../../shared/call-protocol.ts';

/** What the voice agent is doing (LiveKit's `lk.agent.state` attribute), or unknown before it says. */
export type AgentState = 'initializing' | 'listening' | 'thinking' | 'speaking' | 'unknown';
const AGENT_STATES: readonly AgentState[] = ['initializing', 'listening', 'thinking', 'speaking'];

export interface PurchaseLink {
  url: string;
  packageId: string | null;
}

/** One answer of the meter, and when (the browser's clock) it arrived. */
export interface MeterAnchor {
  reading: CallReading;
  meteredAt: string | null;
  receivedAtMs: number;
}

/** Why a call ended, when it was neither cut off nor refused for lack of time. */
export type EndReason = 'you_left' | 'agent_left' | 'store_unreachable' | 'connection_lost';

export type TalkState =
  | { kind: 'idle' }
  | { kind: 'unavailable'; message: string }
  | { kind: 'requesting' }
  | { kind: 'connecting' }
  | {
    kind: 'in_call';
    agentState: AgentState;
    /** The agent's last call_state (null until it publishes one, or when it was malformed). */
    callState: CallStateName | null;
    /** The last meter answer; null until one arrives or when time left could not be read. */
    meter: MeterAnchor | null;
    purchaseLink: PurchaseLink | null;
    sessionId: string | null;
  }
  | { kind: 'cut_off'; purchaseLink: PurchaseLink | null; sessionId: string | null }
  | { kind: 'no_balance'; message: string; purchaseLink: PurchaseLink | null }
  | { kind: 'ended'; reason: EndReason; sessionId: string | null }
  | { kind: 'failed'; message: string };

export type TalkEvent =
  | { type: 'requested' }
  | { type: 'token_refused'; status: number; code: string; message: string }
  | { type: 'connecting' }
  | { type: 'connected' }
  | { type: 'agent_state'; state: string }
  | { type: 'attributes'; record: Readonly<Record<string, string>>; receivedAtMs: number }
  | { type: 'purchase_link'; url: string; packageId: string | null }
  | { type: 'disconnected'; reason: EndReason }
  | { type: 'error'; message: string }
  /** The caller gave up before the call started. */
  | { type: 'cancelled' }
  | { type: 'reset' };

export const NO_BALANCE_MESSAGE = 'You have no conversation time left. Buy a time card or redeem a code to talk to MindBot.';

export function initialTalkState(callsEnabled: boolean): TalkState {
  return callsEnabled ? { kind: 'idle' }
    : { kind: 'unavailable', message: 'Calls are not available on this server: it has no LiveKit configured.' };
}

/** States from which the caller may start a call (again). */
export function canStartCall(state: TalkState): boolean {
  return ['idle', 'cut_off', 'no_balance', 'ended', 'failed'].includes(state.kind);
}

/** Only an https link is ever shown: anything else sent on the topic (javascript:, http:, junk) is dropped. */
export function safePurchaseLink(url: string, packageId: string | null): PurchaseLink | null {
  try {
    const parsed = new URL(url.trim());
    return parsed.protocol === 'https:' ? { url: parsed.href, packageId } : null;
  } catch {
    return null;
  }
}

function readAnchor(previous: MeterAnchor | null, record: Readonly<Record<string, string>>, receivedAtMs: number): MeterAnchor | null {
  const reading = readCallAttributes(record);
  if (reading.remainingSeconds === null) return null;
  const meteredAt = record[CALL_ATTRIBUTES.meteredAt] ?? null;
  // LiveKit sends the whole attribute set on any change: the same answer seen again is not a new anchor.
  if (previous && previous.meteredAt === meteredAt && previous.reading.remainingSeconds === reading.remainingSeconds) {
    return { ...previous, reading };
  }
  return { reading, meteredAt, receivedAtMs };
}

export function talkReducer(state: TalkState, event: TalkEvent): TalkState {
  switch (event.type) {
    case 'requested':
      return canStartCall(state) ? { kind: 'requesting' } : state;
    case 'token_refused':
      if (state.kind !== 'requesting') return state;
      if (event.status === 402) return { kind: 'no_balance', message: NO_BALANCE_MESSAGE, purchaseLink: null };
      if (event.status === 503) return { kind: 'unavailable', message: `Calls are not available on this server: ${event.message}.` };
      return { kind: 'failed', message: event.message };
    case 'connecting':
      return state.kind === 'requesting' ? { kind: 'connecting' } : state;
    case 'connected':
      return state.kind === 'connecting'
        ? { kind: 'in_call', agentState: 'unknown', callState: null, meter: null, purchaseLink: null, sessionId: null }
        : state;
    case 'agent_state':
      if (state.kind !== 'in_call') return state;
      return { ...state, agentState: (AGENT_STATES as readonly string[]).includes(event.state) ? event.state as AgentState : 'unknown' };
    case 'attributes': {
      if (state.kind !== 'in_call') return state;
      const reading = readCallAttributes(event.record);
      return {
        ...state,
        callState: reading.state,
        meter: readAnchor(state.meter, event.record, event.receivedAtMs),
        sessionId: reading.sessionId ?? state.sessionId,
      };
    }
    case 'purchase_link': {
      const link = safePurchaseLink(event.url, event.packageId);
      if (!link) return state;
      // It may arrive as the agent says goodbye: the screens after the call keep it too.
      if (state.kind === 'in_call' || state.kind === 'cut_off' || state.kind === 'no_balance') return { ...state, purchaseLink: link };
      return state;
    }
    case 'disconnected':
      if (state.kind === 'connecting') return { kind: 'failed', message: 'The call ended before it started. Try again.' };
      if (state.kind !== 'in_call') return state;
      if (state.callState === 'cut_off') return { kind: 'cut_off', purchaseLink: state.purchaseLink, sessionId: state.sessionId };
      if (state.callState === 'no_balance') return { kind: 'no_balance', message: NO_BALANCE_MESSAGE, purchaseLink: state.purchaseLink };
      if (state.callState === 'store_unreachable') return { kind: 'ended', reason: 'store_unreachable', sessionId: state.sessionId };
      return { kind: 'ended', reason: event.reason, sessionId: state.sessionId };
    case 'error':
      return state.kind === 'requesting' || state.kind === 'connecting' || state.kind === 'in_call'
        ? { kind: 'failed', message: event.message } : state;
    case 'cancelled':
      return state.kind === 'requesting' || state.kind === 'connecting' ? initialTalkState(true) : state;
    case 'reset':
      return canStartCall(state) ? initialTalkState(true) : state;
  }
}

/** Whether the screen is in a call or on its way to one (the room must be left when the page goes). */
export function callIsOpen(state: TalkState): boolean {
  return state.kind === 'connecting' || state.kind === 'in_call';
}

/**
 * Seconds of talk left at `nowMs`, or null when unknown (before the first meter answer, or a malformed one).
 * Once the agent says the time ran out, zero, whatever the last countdown said.
 */
export function timeLeftSeconds(state: TalkState, nowMs: number): number | null {
  if (state.kind !== 'in_call') return null;
  if (state.callState === 'cut_off' || state.callState === 'no_balance') return 0;
  if (!state.meter) return null;
  return secondsLeft(state.meter.reading, state.meter.receivedAtMs, nowMs);
}

/** The agent warns at 5 minutes and at 1 minute left; the screen marks the same moments. */
export type TimeWarning = 'none' | 'low' | 'last_minute';
export function timeWarning(seconds: number | null): TimeWarning {
  if (seconds === null) return 'none';
  if (seconds <= 60) return 'last_minute';
  return seconds <= 300 ? 'low' : 'none';
}

/**
 * What a screen reader hears about the time left: it changes at most once a minute (whole minutes, rounded
 * down), so a polite live region is not read out every second.
 */
export function timeLeftAnnouncement(seconds: number | null): string {
  if (seconds === null) return 'Time left: not known yet.';
  if (seconds <= 0) return 'Your time has run out.';
  if (seconds < 60) return 'Less than a minute left.';
  const minutes = Math.floor(seconds / 60);
  return `About ${minutes} minute${minutes === 1 ? '' : 's'} left.`;
}
