import type { Logger } from 'pino';
import type Stripe from 'stripe';
import type { CallPhase } from '../shared/call-protocol.ts';
import type { BillingStore, SessionState } from '../billing/store.ts';

/** What the tools need to know about the running call: the CallController itself fits. */
export interface CallView {
  readonly state: SessionState | null;
  readonly phase?: CallPhase;
}

/** The call controller, a getter for its last state, or null when the call is not billed (a guest). */
export type CallSource = CallView | (() => SessionState | null) | null;

/** Where the Checkout link goes (in production: a LiveKit text stream to the caller's screen). */
export type SendPurchaseLink = (url: string, info: PurchaseLinkInfo) => Promise<void> | void;

export interface PurchaseLinkInfo {
  packageId: string;
  checkoutSessionId: string;
}

/** What start_purchase_process needs to create a Checkout Session (the sidecar's PurchaseDeps minus the store). */
export interface ToolPurchaseDeps {
  stripe: Stripe | null;
  successUrl: string;
  cancelUrl: string;
  log: Logger;
}

export interface BillingToolDeps {
  store: BillingStore;
  /** The caller's user id, or null for a guest (no billing, no purchases). */
  userId: string | null;
  call?: CallSource;
  sendPurchaseLink?: SendPurchaseLink;
  purchase?: ToolPurchaseDeps;
  /** The clock for "how long", "expires tomorrow" (the real one unless a test passes its own). */
  now?: () => Date;
  /** The caller's time zone for dates ('UTC' unless known). */
  timeZone?: string;
  /** Makes each purchase's Stripe idempotency key unique to this call (a random id unless given). */
  callKey?: string;
}

export function readCallState(call: CallSource | undefined): SessionState | null {
  if (!call) return null;
  return typeof call === 'function' ? call() : call.state;
}

export function readCallPhase(call: CallSource | undefined): CallPhase | null {
  if (!call || typeof call === 'function') return null;
  return call.phase ?? null;
}

export const GUEST_NO_TRACKING =
  "You're talking as a guest, so your time isn't tracked and there is no balance to check. " +
  'Creating a free account lets you buy talk time and keep track of it.';
