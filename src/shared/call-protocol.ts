// What the agent tells the caller's app during a call, over LiveKit (shared by src/agent and src/web).
//
// Time left: the agent sets these attributes on its own participant after every answer of the meter, so the
// app's countdown follows the billing store, not the browser's guess. The app counts down from the last
// answer and re-anchors at the next one (at most one increment later).
//
// Purchase link: the Checkout URL as a text stream on PURCHASE_LINK_TOPIC (attributes package_id,
// checkout_session_id), sent to the caller only.

/** Where the agent's call controller is in a call (src/agent/call-controller.ts); the tools read it. */
export type CallPhase = 'idle' | 'starting' | 'active' | 'ending' | 'ended' | 'not_started';

export const PURCHASE_LINK_TOPIC = 'mindbot.purchase_link';

export const CALL_ATTRIBUTES = {
  /** The call's state, one of CallStateName. */
  state: 'mindbot.call_state',
  /** Talk time left at `meteredAt`, in whole seconds: the paid part of this call not yet used plus the balance. */
  remainingSeconds: 'mindbot.remaining_seconds',
  /** When the store answered (ISO 8601, the server's clock). */
  meteredAt: 'mindbot.metered_at',
  /** The billing session id (for support), absent for guests. */
  sessionId: 'mindbot.session_id',
} as const;

export type CallStateName =
  | 'starting' // the agent is setting the call up
  | 'active' // metered; remaining_seconds is set
  | 'guest' // not billed; remaining_seconds is the guest allowance left
  | 'no_balance' // no time: the agent offers packages, then ends the call
  | 'cut_off' // the time ran out: goodbye, then the agent leaves
  | 'store_unreachable' // billing could not be reached past the grace: the call ends
  | 'ended'; // settled

export const CALL_STATE_NAMES: readonly CallStateName[] =
  ['starting', 'active', 'guest', 'no_balance', 'cut_off', 'store_unreachable', 'ended'];

/** The attributes for one answer of the meter (all values are strings, as LiveKit attributes are). */
export function callAttributes(input: {
  state: CallStateName; remainingSeconds?: number | null; meteredAt?: Date; sessionId?: string | null;
}): Record<string, string> {
  const out: Record<string, string> = { [CALL_ATTRIBUTES.state]: input.state };
  if (input.remainingSeconds !== undefined && input.remainingSeconds !== null) {
    out[CALL_ATTRIBUTES.remainingSeconds] = String(Math.max(0, Math.floor(input.remainingSeconds)));
  }
  if (input.meteredAt) out[CALL_ATTRIBUTES.meteredAt] = input.meteredAt.toISOString();
  if (input.sessionId) out[CALL_ATTRIBUTES.sessionId] = input.sessionId;
  return out;
}

export interface CallReading {
  state: CallStateName | null;
  remainingSeconds: number | null;
  sessionId: string | null;
}

/** Reads the agent's attributes; anything malformed reads as unknown (null), never as a wrong number. */
export function readCallAttributes(attributes: Readonly<Record<string, string>> | undefined): CallReading {
  const a = attributes ?? {};
  const state = a[CALL_ATTRIBUTES.state];
  const remaining = a[CALL_ATTRIBUTES.remainingSeconds];
  return {
    state: (CALL_STATE_NAMES as readonly string[]).includes(state ?? '') ? state as CallStateName : null,
    remainingSeconds: remaining !== undefined && /^\d{1,10}$/.test(remaining) ? Number(remaining) : null,
    sessionId: a[CALL_ATTRIBUTES.sessionId] ?? null,
  };
}

/**
 * Seconds left now, counted down from the last reading received at `receivedAtMs` (both on the browser's
 * clock, so the clocks of browser and server never need to agree).
 */
export function secondsLeft(reading: CallReading, receivedAtMs: number, nowMs: number): number | null {
  if (reading.remainingSeconds === null) return null;
  return Math.max(0, reading.remainingSeconds - Math.floor(Math.max(0, nowMs - receivedAtMs) / 1000));
}
