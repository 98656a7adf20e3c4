// The caller's plans in headless Chromium against the real sidecar, the test database and the fake Stripe
// Billing: the plan picker with every plan priced per hour and Subscribe sending the browser to Checkout (then,
// once Stripe's webhooks land, switching and cancelling); the period view of a postpaid caller whose calls were
// charged by the real metering SQL (minutes, cost so far, invoice lines exact and rounded once); the spending cap
// set and refused beyond the plan's maximum; a suspended plan's reason and its unpaid invoice's link.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type Stripe from 'stripe';
import type { BillingStore } from '../src/billing/store.ts';
import { syncStripeCatalogue } from '../src/payments/stripe-sync.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, WEBHOOK_SECRET, type TestSidecar } from './helpers/sidecar.ts';
import { startFakeStripeBilling, type FakeBilling } from './helpers/fake-stripe-billing.ts';
import type { FakeStripe } from './helpers/fake-stripe.ts';
import { planId, subscribe } from './helpers/plan-fixtures.ts';
import { assertAccessible, ensureWebBuilt, launchBrowser, openPage, screenshot, signInLocally, type OpenedPage } from './helpers/browser.ts';

/** Chromium logs a refused fetch as a console error; only those with the statuses the test expects are left out. */
function assertClean(opened: OpenedPage, expectedStatuses: number[] = []): void {
  assert.deepEqual(opened.problems.cspViolations, []);
  assert.deepEqual(opened.problems.consoleErrors.filter((text) => {
    const match = /^Failed to load resource: the server responded with a status of (\d{3})\b/.exec(text);
    return !(match && expectedStatuses.includes(Number(match[1])));
  }), []);
}

const DAY = 86_400_000;

describe('web app: the caller’s plans', () => {
  let db: TestDatabase;
  let fake: FakeStripe & { billing: FakeBilling };
  let stripe: Stripe;
  let sidecar: TestSidecar;
  let browser: Browser;
  const stores: BillingStore[] = [];

  before(async () => {
    ensureWebBuilt();
    db = await createPostgresDatabase();
    fake = await startFakeStripeBilling({ billing: { startTime: Math.floor(Date.now() / 1000) } });
    stripe = fake.client({ maxNetworkRetries: 0 });
    sidecar = await startSidecar(db, { web: true, stripe });
    fake.billing.setWebhookEndpoint({ url: `${sidecar.url}/webhooks/stripe`, secret: WEBHOOK_SECRET, timeoutMs: 10_000 });
    await syncStripeCatalogue(stripe, sidecar.store);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await Promise.all(stores.map((s) => s.close()));
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  const signIn = async (page: Page, userId: string) => {
    await signInLocally(page, sidecar.url, { userId });
    await page.getByRole('heading', { name: 'Your MindBot time' }).waitFor();
  };
  const plansSection = (page: Page) => page.getByRole('region', { name: 'Your plan' });
  const periodSection = (page: Page) => page.getByRole('region', { name: 'This period' });
  const planItem = (page: Page, name: string) =>
    plansSection(page).getByRole('listitem').filter({ has: page.getByRole('heading', { name }) });

  /** A postpaid plan for the user whose period holds today, with the Stripe customer its meter events name. */
  const onPlan = async (userId: string, key: string, options: { status?: 'active' | 'suspended'; reason?: string; invoiceUrl?: string } = {}) => {
    await db.sql.query(`insert into public.stripe_customers (user_id, customer_id) values ($1, $2)`,
      [userId, `cus_${userId.replaceAll('-', '').slice(0, 20)}`]);
    return subscribe(db.sql, {
      userId, planId: await planId(db.sql, key), start: new Date(Date.now() - 5 * DAY).toISOString(),
      end: new Date(Date.now() + 25 * DAY).toISOString(), status: options.status ?? 'active',
      ...(options.reason && { suspendedReason: options.reason }), ...(options.invoiceUrl && { invoiceUrl: options.invoiceUrl }),
    });
  };

  /** A call charged by the real metering SQL (017): started (the first minute), metered after `seconds`, ended. */
  const call = async (userId: string, seconds: number) => {
    const clock = new TestClock(new Date(Date.now() - 3_600_000).toISOString());
    const store = db.store(clock.now);
    stores.push(store);
    const started = await store.startSession({ userId, externalKey: `${userId}:${crypto.randomUUID()}`, roomName: 'room' });
    clock.advance(seconds);
    await store.meterSession(started.session_id);
    await store.endSession({ sessionId: started.session_id, reason: 'caller_left' });
  };

  const apiAnswer = async (userId: string, path: string) =>
    (await (await sidecar.request('GET', path, { token: await sidecar.tokenFor(userId) })).json()) as Record<string, any>;

  it('shows every plan priced per hour; Subscribe goes to Stripe Checkout; once Stripe confirms, a downgrade waits for the period’s end and the plan can be cancelled', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    try {
      await signIn(page, user);
      const plans = plansSection(page);
      await plans.getByRole('button', { name: 'Subscribe to Pay as you go' }).waitFor();
      // The seed's offer (migrations/016): $0.05 a minute; 6, 4 and 2 cents by volume; $49 for 1,000 minutes.
      assert.match(await planItem(page, 'Pay as you go').innerText(), /\$3\.00 per hour/);
      const volume = await planItem(page, 'Volume').innerText();
      assert.match(volume, /First 8 h 20 min: \$3\.60 per hour/);
      assert.match(volume, /8 h 20 min to 33 h 20 min: \$2\.40 per hour/);
      assert.match(volume, /Over 33 h 20 min: \$1\.20 per hour/);
      const pro = await planItem(page, 'Pro monthly').innerText();
      assert.match(pro, /\$49\.00 a month with 16 h 40 min included/);
      assert.match(pro, /\$2\.94 per hour/); // the fee over its included hours
      assert.match(pro, /Every minute: \$3\.00 per hour/);
      const cheapest = (await apiAnswer(user, '/api/plans')).plans[0].price_per_hour.cheapest_pack_cents_per_hour as number;
      assert.match(await planItem(page, 'Prepaid time cards').innerText(),
        new RegExp(`from \\$${(Math.round(cheapest) / 100).toFixed(2).replace('.', '\\.')} per hour`));
      assert.equal(await plans.getByRole('button', { name: /^Subscribe to / }).count(), 3);
      await screenshot(page, 'caller-plan-picker');
      await assertAccessible(page, 'the caller page with the plan picker');

      await page.route('https://checkout.stripe.test/**', (route) =>
        route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>Stripe Checkout</title><h1>Stripe Checkout</h1>' }));
      await plans.getByRole('button', { name: 'Subscribe to Volume' }).click();
      await page.waitForURL(/^https:\/\/checkout\.stripe\.test\//);
      const { rows: [pending] } = await db.sql.query<{ status: string; session: string }>(
        `select u.status, u.stripe_checkout_session_id as session from public.user_plans u join public.plans p on p.id = u.plan_id
          where u.user_id = $1 and p.key = 'tiered'`, [user]);
      assert.equal(pending?.status, 'pending');
      const session = await stripe.checkout.sessions.retrieve(pending.session);
      assert.equal(session.mode, 'subscription');
      assert.equal(session.client_reference_id, user);
      assert.equal(page.url(), session.url);
      assertClean(opened);

      // Back from Checkout before Stripe's webhooks: the landing waits for the plan, not for a pack.
      await page.goto(`${sidecar.url}/purchase/success?session_id=${session.id}`); // still signed in
      const landing = page.getByRole('region', { name: 'Your new plan' });
      await landing.getByText('Confirming your subscription with Stripe…').waitFor();
      assert.equal(await page.getByRole('region', { name: 'Your purchase' }).count(), 0);
      // Paid at Stripe: its webhooks make the plan active, and the landing says so.
      fake.billing.completeSubscriptionCheckout(session.id);
      for (const delivery of await fake.billing.deliver()) assert.equal(delivery.status, 200, delivery.body);
      await landing.getByText('Thank you! You are on Volume.').waitFor();
      await screenshot(page, 'caller-plan-landed');
      await plans.getByText('You are on Volume').waitFor();
      assert.match(await planItem(page, 'Volume').innerText(), /Your plan/);
      await plans.getByRole('button', { name: 'Manage card and invoices in Stripe' }).waitFor();

      // A plan listed before the current one is a downgrade (020): it waits for the period's end.
      await plans.getByRole('button', { name: 'Switch to Pay as you go' }).click();
      await plans.getByRole('status').getByText(/You will move to Pay as you go when this period ends on/).waitFor();
      await plans.getByText(/it changes to payg on/).waitFor();
      assert.equal((await apiAnswer(user, '/api/plans/current')).plan.scheduled_plan_key, 'payg');

      await plans.getByRole('button', { name: 'Cancel my plan at the period’s end' }).click();
      await plans.getByRole('status').getByText(/Your plan ends at the end of this period/).waitFor();
      for (const delivery of await fake.billing.deliver()) assert.equal(delivery.status, 200, delivery.body);
      const sub = await stripe.subscriptions.retrieve((await db.sql.query<{ s: string }>(
        `select stripe_subscription_id as s from public.user_plans where user_id = $1 and status <> 'ended'`, [user])).rows[0]!.s);
      assert.equal(sub.cancel_at_period_end, true);
      await screenshot(page, 'caller-plan-cancelled');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('says so when a subscription cannot start, and that nothing was charged; the picker reads on a phone and in the dark scheme', async () => {
    const opened = await openPage(browser, { phone: true });
    const { page } = opened;
    try {
      await signIn(page, newUserId());
      const plans = plansSection(page);
      await plans.getByRole('button', { name: 'Subscribe to Pro monthly' }).waitFor();
      fake.failNext(1, 500, { path: 'POST /v1/checkout/sessions' });
      await plans.getByRole('button', { name: 'Subscribe to Pro monthly' }).click();
      await plans.getByRole('alert').getByText('The payment provider could not be reached. Nothing was charged').waitFor();
      assert.equal(new URL(page.url()).origin, sidecar.url, 'the browser stayed on the page');
      // No plan was started: the buttons are there again.
      assert.equal(await plans.getByRole('button', { name: /^Subscribe to / }).count(), 3);
      assert.ok(await plans.getByRole('button', { name: 'Subscribe to Pro monthly' }).isEnabled());
      const width = await page.evaluate('document.documentElement.scrollWidth');
      assert.ok(Number(width) <= 390, `the page fits the phone's width (${String(width)} px)`);
      await screenshot(page, 'caller-plan-error-phone');
      await assertAccessible(page, 'the plan picker on a phone with a refused subscription');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the plan picker on a phone, dark scheme');
      assertClean(opened, [502]); // the refused subscription, shown on purpose
    } finally {
      await opened.close();
    }
  });

  it('shows a postpaid caller this period: minutes, the cost so far and the invoice lines, exact and rounded once', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    try {
      await onPlan(user, 'payg');
      await call(user, 150); // 60 s at the start, 120 s more at the meter: 180 s at 5 cents a minute
      await call(user, 30);  // the first increment only: 60 s
      const usage = await apiAnswer(user, '/api/usage/current');
      assert.deepEqual([usage.total_seconds, usage.rated_seconds, usage.usage_cents, usage.plan_cost_cents], [240, 240, 20, 20]);
      await signIn(page, user);
      const period = periodSection(page);
      await period.getByText('Cost so far').first().waitFor();
      const stats = await period.locator('.stats').innerText();
      assert.match(stats, /4 min/);
      assert.match(stats, /2 calls/);
      assert.match(stats, /\$0\.20\s*Cost so far/);
      const line = period.getByRole('row').filter({ hasText: 'Usage' });
      const cells = await line.getByRole('cell').allInnerTexts();
      assert.match(cells[0]!, /payg v1/);
      assert.equal(cells[1], '4 min');
      assert.equal(cells[2], '$0.2000'); // 240 s × 0.083333333333 c, shown to 4 decimals
      assert.equal(cells[3], '$0.20');
      assert.match(await period.getByRole('row').filter({ hasText: 'Cost so far' }).innerText(), /\$0\.20/);
      assert.match(await period.innerText(), /\$0\.20 of your \$50\.00 cap used: \$49\.80 left/);
      assert.equal(await period.getByRole('progressbar').getAttribute('value'), '20');
      assert.equal(await period.getByRole('progressbar').getAttribute('max'), '5000');
      // Each call's cost, exact to 4 decimals: 180 s and 60 s at 5 cents a minute.
      const calls = page.getByRole('region', { name: 'History' }).getByRole('table', { name: 'Your most recent calls' });
      await calls.waitFor();
      const costs = (await calls.getByRole('row').allInnerTexts()).slice(1).map((row) => /\$\d+\.\d{4}/.exec(row)?.[0]).sort();
      assert.deepEqual(costs, ['$0.0500', '$0.1500']);
      assert.match(await calls.getByRole('row').nth(1).innerText(), /mindbot/);
      await screenshot(page, 'caller-period');
      await assertAccessible(page, 'the caller page with this period on a postpaid plan');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('shows a subscription’s included minutes used and left and its fee line, and no prepaid warning', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    try {
      await onPlan(user, 'pro_monthly');
      await call(user, 150); // 180 s, all of it included
      const usage = await apiAnswer(user, '/api/usage/current');
      assert.deepEqual([usage.included_seconds_used, usage.included_seconds_left, usage.fee_cents, usage.plan_cost_cents],
        [180, 59_820, 4900, 4900]);
      await signIn(page, user);
      const period = periodSection(page);
      await period.getByText('Cost so far').first().waitFor();
      const stats = await period.locator('.stats').innerText();
      assert.match(stats, /\$49\.00\s*Cost so far/);
      assert.match(stats, /16 h 37 min\s*Included left \(3 min of 16 h 40 min used\)/);
      const fee = await period.getByRole('row').filter({ hasText: 'Monthly fee' }).getByRole('cell').allInnerTexts();
      assert.deepEqual([fee[1], fee[2], fee[3]], ['—', '—', '$49.00']);
      const balance = page.getByRole('region', { name: 'Balance' });
      await balance.getByText(/Your calls are billed on your plan/).waitFor();
      assert.equal(await balance.getByText('No time left').count(), 0);
      await screenshot(page, 'caller-period-subscription');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('sets the spending cap, and shows the refusal of a cap beyond the plan’s maximum, changing nothing', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    try {
      await onPlan(user, 'payg');
      await call(user, 30);
      await signIn(page, user);
      const period = periodSection(page);
      const input = period.getByLabel('New cap (USD)');
      await input.fill('25.50');
      await period.getByRole('button', { name: 'Set cap' }).click();
      await period.getByText('Your cap is now $25.50.').waitFor();
      await period.getByText(/of your \$25\.50 cap used/).waitFor();
      assert.equal((await apiAnswer(user, '/api/usage/current')).cap_cents, 2550);
      assert.equal(await period.getByRole('progressbar').getAttribute('max'), '2550');

      await input.fill('600');
      await period.getByRole('button', { name: 'Set cap' }).click();
      const alert = period.getByRole('alert');
      await alert.getByText(/The cap was not changed: .*at most 50000 cents/).waitFor();
      assert.equal(await input.getAttribute('aria-invalid'), 'true');
      assert.equal((await apiAnswer(user, '/api/usage/current')).cap_cents, 2550);
      assert.match(await period.innerText(), /of your \$25\.50 cap used/);

      await input.fill('ten dollars');
      await period.getByRole('button', { name: 'Set cap' }).click();
      await alert.getByText('Enter the cap as an amount, like 25 or 25.50.').waitFor();
      await screenshot(page, 'caller-cap-refused');
      await assertAccessible(page, 'the caller page with a refused cap');
      assertClean(opened, [400]); // the refused cap, shown on purpose
    } finally {
      await opened.close();
    }
  });

  it('shows a suspended plan’s reason and its unpaid invoice’s link first, and the invoice in the list', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    const invoiceId = `in_test${Date.now().toString(36)}`;
    const invoiceUrl = `https://invoice.stripe.com/i/acct_test/test_${invoiceId}?s=ap`;
    const reason = `the payment of invoice ${invoiceId} (12.34 USD) failed; pay it to keep calling on your plan`;
    try {
      const userPlan = await onPlan(user, 'payg', { status: 'suspended', reason, invoiceUrl });
      // As record_invoice_event (020) keeps Stripe's invoice.payment_failed.
      await db.sql.query(
        `insert into public.stripe_invoices (invoice_id, user_id, user_plan_id, status, payment_failed, currency, total_cents,
           amount_due_cents, hosted_invoice_url, period_start, period_end, created_at, updated_at)
         values ($1, $2, $3, 'open', true, 'usd', 1234, 1234, $4, now() - interval '35 days', now() - interval '5 days', now(), now())`,
        [invoiceId, user, userPlan, invoiceUrl]);
      await signIn(page, user);
      const period = periodSection(page);
      const alert = period.getByRole('alert');
      await alert.getByText('Calls on your plan are paused.').waitFor();
      assert.match(await alert.innerText(), new RegExp(`${reason.replace(/[().]/g, '\\$&')}\\.`, 'i'));
      assert.equal(await alert.getByRole('link', { name: 'Pay the invoice at Stripe' }).getAttribute('href'), invoiceUrl);
      const invoices = page.getByRole('region', { name: 'Invoices' });
      const row = invoices.getByRole('row').filter({ hasText: '$12.34' });
      assert.match(await row.innerText(), /Due · payment failed/);
      assert.equal(await row.getByRole('link', { name: `Pay invoice ${invoiceId}` }).getAttribute('href'), invoiceUrl);
      await screenshot(page, 'caller-plan-suspended');
      await assertAccessible(page, 'the caller page with a suspended plan');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });
});
