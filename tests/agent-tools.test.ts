// The billing tools (src/tools) driven through @livekit/agents' own test harness: an AgentSession in text
// mode (no room, no network) whose LLM is the framework's FakeLLM, running the REAL tools against the real
// test database and the fake Stripe. The fake model calls the tool the script names for a user message, then
// relays the tool's answer as its reply, so each test checks both the tool call and what the caller hears.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { initializeLogger, voice } from '@livekit/agents';
import pino from 'pino';
import { CallController } from '../src/agent/call-controller.ts';
import { greetingFor } from '../src/agent/mindbot-agent.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { billingTools, type BillingToolDeps } from '../src/tools/index.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

type ToolCall = { name: string; args: Record<string, unknown> };

/**
 * The framework's FakeLLM, answering by script: a user message in the script becomes that tool call; a tool's
 * output (the model's next input) is said back as the reply.
 */
class ScriptedLLM extends voice.testing.FakeLLM {
  constructor(private readonly script: Record<string, ToolCall>) {
    super();
  }

  override lookup(input: string): voice.testing.FakeLLMResponse | undefined {
    const call = this.script[input];
    if (call) return { input, type: 'llm', ttft: 0, duration: 0, toolCalls: [call] };
    // A tool's output: JSON-quoted when it returned, the plain message when it threw a ToolError.
    const content = input.startsWith('"') ? (JSON.parse(input) as string) : input;
    return { input, type: 'llm', ttft: 0, duration: 0, content };
  }
}

const SCRIPT: Record<string, ToolCall> = {
  'how much time do I have': { name: 'check_time_balance', args: {} },
  'what do the packages cost': { name: 'get_pricing_packages', args: {} },
  'how much has this call cost': { name: 'estimate_session_cost', args: {} },
  'summarize this call': { name: 'get_session_summary', args: {} },
  'buy the platinum pack': { name: 'start_purchase_process', args: { package_id: 'platinum_100h' } },
  'buy the basic pack': { name: 'start_purchase_process', args: { package_id: 'basic_5h' } },
};

interface Turn {
  call: { name: string; args: unknown };
  /** The tool's output as the model received it (parsed from its JSON quoting). */
  output: string;
  isError: boolean;
  /** What the agent said. */
  reply: string;
}

/** One user turn through a fresh AgentSession with the billing tools; closes the session afterwards. */
async function ask(deps: BillingToolDeps, userInput: string): Promise<Turn> {
  const session = new voice.AgentSession({
    llm: new ScriptedLLM(SCRIPT),
    vad: null,
    turnHandling: { turnDetection: null },
  });
  const agent = new voice.Agent({
    instructions: 'You are MindBot. Use the billing tools to answer questions about talk time and purchases.',
    tools: billingTools(deps),
  });
  await session.start({ agent });
  try {
    const result = await session.run({ userInput }).wait(); // .wait(): without it the run has no events
    const call = result.expect.nextEvent().isFunctionCall({ name: SCRIPT[userInput]!.name }).event().item;
    const out = result.expect.nextEvent().isFunctionCallOutput().event().item;
    const message = result.expect.nextEvent().isMessage({ role: 'assistant' }).event().item;
    result.expect.noMoreEvents();
    let output = out.output;
    try {
      output = JSON.parse(out.output) as string;
    } catch {
      // an error output is not JSON-quoted
    }
    return { call: { name: call.name, args: JSON.parse(call.args) }, output, isError: out.isError, reply: message.textContent ?? '' };
  } finally {
    await session.close();
  }
}

describe('billing tools through the agent test harness', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let store: BillingStore;
  const clock = new TestClock('2026-03-02T09:00:00Z');
  const log = pino({ level: 'silent' });
  const sent: Array<{ url: string; packageId: string }> = [];

  before(async () => {
    initializeLogger({ pretty: false, level: 'warn' });
    db = await createPostgresDatabase();
    store = db.store(clock.now, { poolSize: 4 });
    fake = await startFakeStripe();
  });
  after(async () => {
    await store?.close();
    await fake?.close();
    await db?.close();
  });

  const depsFor = (userId: string | null, extra: Partial<BillingToolDeps> = {}): BillingToolDeps => ({
    store,
    userId,
    now: clock.now,
    purchase: {
      stripe: fake.client(),
      successUrl: 'https://mindbot.test/purchase/success?session_id={CHECKOUT_SESSION_ID}',
      cancelUrl: 'https://mindbot.test/purchase/cancel',
      log,
    },
    sendPurchaseLink: (url, info) => {
      sent.push({ url, packageId: info.packageId });
    },
    ...extra,
  });

  it('"how much time do I have" calls check_time_balance and says the true balance, read afresh each time', async () => {
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'basic_5h', idempotencyKey: `grant-${user}-1` });
    const deps = depsFor(user);

    const first = await ask(deps, 'how much time do I have');
    assert.deepEqual(first.call, { name: 'check_time_balance', args: {} });
    assert.equal(first.isError, false);
    // basic_5h: 5 hours + 30 bonus minutes; the card runs a year from its grant (default card_validity).
    assert.equal(first.output, 'You have 5 hours and 30 minutes of talk time left, on one time card. It expires on March 2, 2027.');
    assert.equal(first.reply, first.output);

    // The same tools, a second card later: the answer follows the database (no cached balance).
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `grant-${user}-2` });
    const second = await ask(deps, 'how much time do I have');
    assert.match(second.reply, /^You have 6 hours and 30 minutes of talk time left, across 2 time cards\./);
  });

  it('a user without time is told so and pointed at the packages', async () => {
    const turn = await ask(depsFor(newUserId()), 'how much time do I have');
    assert.equal(turn.reply, 'You have no talk time left. You can buy a time package: ask me what the packages cost.');
  });

  it('get_pricing_packages reads the tiers from the database, in words', async () => {
    const turn = await ask(depsFor(newUserId()), 'what do the packages cost');
    assert.match(turn.reply, /^There are \d+ packages: /);
    assert.match(turn.reply, /the Starter Pack \(id starter_1h\): 1 hour for 9 dollars and 99 cents/);
    assert.match(turn.reply, /the Basic Pack \(id basic_5h\): 5 hours plus 30 minutes free for 44 dollars and 99 cents/);
    assert.match(turn.reply, /the Pro Pack \(id pro_25h\): 25 hours plus 5 hours free for 179 dollars and 99 cents/);
    assert.doesNotMatch(turn.reply, /\$/);
  });

  it('start_purchase_process with an unknown package buys nothing and says which packages exist', async () => {
    const user = newUserId();
    const before = fake.requests('POST /v1/checkout/sessions').length;
    const sentBefore = sent.length;
    const turn = await ask(depsFor(user), 'buy the platinum pack');
    assert.deepEqual(turn.call, { name: 'start_purchase_process', args: { package_id: 'platinum_100h' } });
    assert.equal(turn.isError, false);
    assert.match(turn.reply, /^There is no package called "platinum_100h"\. The packages are /);
    for (const id of ['starter_1h', 'basic_5h', 'pro_25h']) assert.match(turn.reply, new RegExp(`id ${id}`));
    assert.equal(fake.requests('POST /v1/checkout/sessions').length, before, 'no Checkout Session');
    assert.equal(sent.length, sentBefore, 'no link sent');
  });

  it('start_purchase_process with a known package creates the Checkout Session and sends its URL to the caller', async () => {
    const user = newUserId();
    const sentBefore = sent.length;
    const turn = await ask(depsFor(user), 'buy the basic pack');
    assert.equal(turn.isError, false, turn.output);
    const created = fake.requests('POST /v1/checkout/sessions').filter((r) => r.params.client_reference_id === user);
    assert.equal(created.length, 1);
    // The price the caller was offered travels with the purchase, so the webhook grants exactly that.
    assert.deepEqual(created[0]!.params.metadata, { user_id: user, package_id: 'basic_5h', gift: 'false',
      seconds: '19800', price_cents: '4499', currency: 'usd', tier_version: '1' });
    const url = (created[0]!.response as { url: string }).url;
    assert.match(url, /^https:\/\//);
    assert.deepEqual(sent.slice(sentBefore), [{ url, packageId: 'basic_5h' }]);
    assert.match(turn.reply, /^A secure payment link for the Basic Pack \(id basic_5h\): 5 hours plus 30 minutes free for 44 dollars and 99 cents is now on the caller's screen\./);
    assert.doesNotMatch(turn.reply, /https?:/, 'the URL goes to the screen, not into speech');
  });

  it('a link that cannot be delivered is a tool error, not a false "sent"', async () => {
    const deps = depsFor(newUserId(), { sendPurchaseLink: () => Promise.reject(new Error('room gone')) });
    const turn = await ask(deps, 'buy the basic pack');
    assert.equal(turn.isError, true);
    assert.match(turn.output, /could not be shown on the caller's screen/);
  });

  it('estimate_session_cost and get_session_summary read the call controller\'s last state and the live balance', async () => {
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `grant-${user}` });
    const timers = new FakeTimers(clock);
    const controller = new CallController({ store, clock: clock.now, timers });
    const deps = depsFor(user, { call: controller });

    const before = await ask(deps, 'how much has this call cost');
    assert.match(before.reply, /^Billing for this call hasn't started yet, so nothing has been charged\. Your balance of 1 hour lasts/);

    await controller.join({ userId: user, externalKey: `call-${user}`, roomName: 'room-tools' });
    await timers.advance(150); // 2.5 minutes in: three 1-minute increments begun and charged
    assert.equal(controller.state!.billed_seconds, 180);

    const cost = await ask(deps, 'how much has this call cost');
    assert.deepEqual(cost.call, { name: 'estimate_session_cost', args: {} });
    // 3600 - 180 on the balance + 30 s paid ahead of now = 57 min 30 s.
    assert.equal(cost.reply,
      'So far this call has used 3 minutes of your talk time (it is charged in steps of 1 minute, each paid when it begins). ' +
      'One minute of talking uses one minute of time, so what you have left lasts about 57 minutes more.');

    const summary = await ask(deps, 'summarize this call');
    assert.equal(summary.reply,
      'This call has been going for about 2 minutes, with 3 minutes charged so far. ' +
      'You can keep talking for about 57 minutes, counting what is still on your balance.');

    await controller.leave('caller_left');
    const ended = await ask(deps, 'summarize this call');
    assert.match(ended.reply, /^This call has ended\. It lasted about 2 minutes and was charged 3 minutes\. You have 57 minutes of talk time left\.$/);
  });

  // A postpaid caller: a current user plan on one of the seeded plans (016), inserted as Stripe's webhook would
  // leave it, for the period of March 2026 (the test clock is March 2).
  async function subscribe(userId: string, planKey: string, options: { capCents: number; status?: 'active' | 'suspended' | 'pending' }) {
    const status = options.status ?? 'active';
    await db.sql.query('insert into public.stripe_customers (user_id, customer_id) values ($1, $2)',
      [userId, `cus_${userId.replaceAll('-', '').slice(0, 20)}`]);
    await db.sql.query(
      `insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end,
         spending_cap_cents, suspended_reason, suspended_invoice_url)
       select $1, p.id, $3, case when $3 <> 'pending' then '2026-03-01T00:00:00Z'::timestamptz end,
              case when $3 <> 'pending' then '2026-04-01T00:00:00Z'::timestamptz end, $4, $5, $6
         from public.plans p where p.key = $2 and p.status = 'active'`,
      [userId, planKey, status, options.capCents, status === 'suspended' ? 'invoice.payment_failed' : null,
        status === 'suspended' ? 'https://invoice.stripe.com/i/test' : null]);
  }

  it('a pay-as-you-go caller hears the period, the cost and the cap, and each call\'s cost in money', async () => {
    const user = newUserId();
    await subscribe(user, 'payg', { capCents: 100 });
    const timers = new FakeTimers(clock);
    const controller = new CallController({ store, clock: clock.now, timers });
    const deps = depsFor(user, { call: controller });

    assert.equal(await greetingFor(store, user),
      "Welcome back! This billing period you've used 0 dollars of your 1 dollar spending cap. How can I help you today?");
    const period = await ask(deps, 'how much time do I have');
    assert.equal(period.reply, 'This billing period you have talked for 0 minutes, and your Pay as you go plan has cost ' +
      '0 dollars so far. Your spending cap is 1 dollar, and 1 dollar of it is left. The period ends on April 1.');
    const before = await ask(deps, 'how much has this call cost');
    assert.match(before.reply, /^Billing for this call hasn't started yet, so nothing has been charged\. This billing period/);

    await controller.join({ userId: user, externalKey: `call-${user}`, roomName: 'room-payg' });
    await timers.advance(150); // three 1-minute increments at 5 cents a minute: 15 cents
    assert.equal(controller.state!.plan?.period_usage_cents, 15);

    // The cap of 100 cents leaves 85.5 cents before the line would round above it: 1025 s at 1/12 cent a
    // second, past the 30 s already paid ahead of now.
    const cost = await ask(deps, 'how much has this call cost');
    assert.equal(cost.reply,
      'So far this call has cost 15 cents ($0.1500), for 3 minutes charged (in steps of 1 minute, each paid when it begins). ' +
      'You can keep talking for about 17 minutes before you reach your spending cap of 1 dollar for this billing period ' +
      '(85 cents of it is left).');
    const summary = await ask(deps, 'summarize this call');
    assert.equal(summary.reply,
      'This call has been going for about 2 minutes, with 3 minutes charged so far, costing 15 cents ($0.1500). ' +
      'You can keep talking for about 17 minutes before you reach your spending cap of 1 dollar for this billing period ' +
      '(85 cents of it is left).');
    const during = await ask(deps, 'how much time do I have');
    assert.match(during.reply, /^This billing period you have talked for 3 minutes, and your Pay as you go plan has cost 15 cents so far\. Your spending cap is 1 dollar, and 85 cents of it is left\./);

    await controller.leave('caller_left');
    const ended = await ask(deps, 'summarize this call');
    assert.equal(ended.reply, 'This call has ended. It lasted about 2 minutes, was charged 3 minutes and cost 15 cents ($0.1500). ' +
      '85 cents of your spending cap of 1 dollar is left this billing period.');
    const endedCost = await ask(deps, 'how much has this call cost');
    assert.equal(endedCost.reply, 'This call has ended. It cost 15 cents ($0.1500), for 3 minutes charged. ' +
      '85 cents of your spending cap of 1 dollar is left this billing period.');
  });

  it('a subscriber hears the fee, the included minutes left and the time cards used before the rate', async () => {
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `grant-${user}` });
    await subscribe(user, 'pro_monthly', { capCents: 2000 });
    const turn = await ask(depsFor(user), 'how much time do I have');
    assert.equal(turn.reply, 'This billing period you have talked for 0 minutes, and your Pro monthly plan has cost ' +
      '49 dollars so far, including the monthly fee of 49 dollars. You have 1000 minutes left of the 1000 minutes your plan ' +
      'includes. Your spending cap is 20 dollars, and 20 dollars of it is left. You also have 1 hour on time cards, which are ' +
      "used before your plan's rate. The period ends on April 1.");
  });

  it('a suspended plan is named with its reason, and its calls run on cards as a prepaid caller\'s do', async () => {
    const user = newUserId();
    await subscribe(user, 'payg', { capCents: 5000, status: 'suspended' });
    const turn = await ask(depsFor(user), 'how much time do I have');
    assert.equal(turn.reply, 'Calls on your Pay as you go plan are suspended because an invoice is unpaid. Once it is paid ' +
      '(the payment link is in the MindBot app), calls go on as before. You have no time cards to use meanwhile. ' +
      'This billing period you have talked for 0 minutes, and your Pay as you go plan has cost 0 dollars so far.');

    // With a card, a call runs on it alone: the prepaid answers, said to be so.
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `grant-${user}` });
    const timers = new FakeTimers(clock);
    const controller = new CallController({ store, clock: clock.now, timers });
    await controller.join({ userId: user, externalKey: `call-${user}`, roomName: 'room-suspended' });
    await timers.advance(150);
    const cost = await ask(depsFor(user, { call: controller }), 'how much has this call cost');
    assert.equal(cost.reply, 'Your monthly plan is suspended because an invoice is unpaid, so this call runs on your time cards. ' +
      'So far this call has used 3 minutes of your talk time (it is charged in steps of 1 minute, each paid when it begins). ' +
      'One minute of talking uses one minute of time, so what you have left lasts about 57 minutes more.');
    await controller.leave('caller_left');
  });

  it('a plan Stripe has not confirmed yet: its calls use cards, and the balance answer says so', async () => {
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `grant-${user}` });
    await subscribe(user, 'payg', { capCents: 5000, status: 'pending' });
    const turn = await ask(depsFor(user), 'how much time do I have');
    assert.equal(turn.reply, 'Your monthly plan is waiting for its payment to be confirmed; until then calls use time cards. ' +
      'You have 1 hour of talk time left, on one time card. It expires on March 2, 2027.');
  });

  it('get_pricing_packages compares the packs and the monthly plans per hour', async () => {
    const turn = await ask(depsFor(newUserId()), 'what do the packages cost');
    assert.match(turn.reply, /^There are \d+ packages: .*the Starter Pack \(id starter_1h\): 1 hour for 9 dollars and 99 cents/);
    assert.match(turn.reply, /Per hour, the packs come to .*the Starter Pack 9 dollars and 99 cents.* the Pro Pack 6 dollars and the Enterprise Pack 5 dollars\./);
    assert.match(turn.reply, /Pay as you go, with no monthly fee: 3 dollars an hour \(5 cents a minute\); Volume/);
    assert.match(turn.reply, /Volume, with no monthly fee: 3 dollars and 60 cents an hour at first, falling to 1 dollar and 20 cents an hour/);
    assert.match(turn.reply, /Pro monthly: 49 dollars a month with 1000 minutes included \(2 dollars and 94 cents an hour if you use them all\), then 3 dollars an hour/);
    assert.match(turn.reply, /Monthly plans are chosen in the MindBot app/);
    assert.doesNotMatch(turn.reply, /\$/);
  });

  it('a guest gets the guest answers: no balance, no billing, no purchase', async () => {
    const sentBefore = sent.length;
    const requestsBefore = fake.requests().length;
    const deps = depsFor(null);

    const balance = await ask(deps, 'how much time do I have');
    assert.match(balance.reply, /as a guest, so your time isn't tracked/);
    assert.match(balance.reply, /free account/);

    const cost = await ask(deps, 'how much has this call cost');
    assert.match(cost.reply, /as a guest, so this call isn't charged/);

    const summary = await ask(deps, 'summarize this call');
    assert.match(summary.reply, /^This is a guest call/);

    const prices = await ask(deps, 'what do the packages cost');
    assert.match(prices.reply, /id basic_5h/);
    assert.match(prices.reply, /needs to create a free account/);

    const purchase = await ask(deps, 'buy the basic pack');
    assert.equal(purchase.reply, "Guests can't buy talk time. The caller needs to create a free account first; then they can buy a package here.");
    assert.equal(sent.length, sentBefore, 'no link sent');
    assert.equal(fake.requests().length, requestsBefore, 'nothing sent to Stripe');
  });
});
