// The MindBot voice agent: a friendly assistant that knows about the caller's talk time and plan and answers
// billing questions with the billing tools (src/tools). The same agent serves a LiveKit room and the text
// console (src/agent/console.ts).
import { llm, voice } from '@livekit/agents';
import type { BillingStore } from '../billing/store.ts';
import { billingTools, type BillingToolDeps } from '../tools/index.ts';
import { greetingText } from './greeting.ts';

export const MINDBOT_INSTRUCTIONS = [
  'You are MindBot, a friendly and warm voice assistant. Keep your answers short and conversational:',
  'they are spoken aloud, so use plain sentences, no lists, no markdown, no URLs and no emojis.',
  'The caller talks to you on prepaid talk time bought as time cards, or on a monthly plan billed for what they use',
  'up to a spending cap they set. You can help with anything, and you know about their time and plan through your tools:',
  'check_time_balance for how much time is left or, on a monthly plan, the minutes, cost so far and what is left of',
  'the cap (always call it, never guess or reuse an old figure),',
  'get_pricing_packages for the packages, the monthly plans and their prices, estimate_session_cost for what this',
  'call has used or cost,',
  'get_session_summary for a summary of this call, and start_purchase_process to send a secure payment link to',
  "the caller's screen once they have chosen a package.",
  "When a tool answers, pass its facts on faithfully in your own words; do not invent balances, prices or dates.",
  'Never ask for card numbers or payment details: payment happens on the secure page the link opens.',
  'If the caller is a guest, their time is not tracked; you can suggest creating a free account to buy time.',
].join(' ');

export interface MindBotAgentOptions {
  /** What the agent already said to open the call (kept in its chat context, so the model knows). */
  greeting?: string;
  /** Overrides MINDBOT_INSTRUCTIONS. */
  instructions?: string;
}

export class MindBotAgent extends voice.Agent {
  constructor(deps: BillingToolDeps, options: MindBotAgentOptions = {}) {
    const chatCtx = llm.ChatContext.empty();
    if (options.greeting) chatCtx.addMessage({ role: 'assistant', content: options.greeting });
    super({
      instructions: options.instructions ?? MINDBOT_INSTRUCTIONS,
      tools: billingTools(deps),
      chatCtx,
    });
  }
}

/**
 * The opening line for this caller, from their balance read now (a guest when userId is null); a caller whose
 * monthly plan pays hears the period against the cap instead.
 */
export async function greetingFor(store: BillingStore, userId: string | null): Promise<string> {
  if (userId === null) return greetingText({ kind: 'guest' });
  const usage = await store.getUsageCurrent(userId);
  if (usage.billing === 'postpaid' && usage.status === 'active' && usage.cap_cents !== null) {
    return greetingText({ kind: 'plan', seconds: null, usageCents: usage.usage_cents, capCents: usage.cap_cents, currency: usage.currency });
  }
  const balance = await store.getBalance(userId);
  return greetingText({ kind: 'user', totalSeconds: balance.total_seconds });
}
