// The admin page (/admin) in headless Chromium against the real sidecar, the test database and a local fake
// of Stripe: purchases go through the real flow (POST /time/purchase, Checkout completed at the fake, the
// signed webhook), and every figure the page shows is compared with what the admin API answers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { formatDuration } from '../src/web/format.ts';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { checkoutSession, purchaseIds, startSidecar, stripeEvent, type TestSidecar } from './helpers/sidecar.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';
import { assertAccessible, ensureWebBuilt, launchBrowser, openPage, screenshot, signInLocally, type OpenedPage } from './helpers/browser.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('web app: the admin page', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let sidecar: TestSidecar;
  let browser: Browser;
  const adminId = newUserId();
  /** Every user this file bought time for: with the users a test seeds, all the users list can show. */
  const buyers = new Set<string>();

  before(async () => {
    ensureWebBuilt();
    db = await createPostgresDatabase();
    fake = await startFakeStripe();
    sidecar = await startSidecar(db, { web: true, stripe: fake.client(), adminIds: [adminId] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  /** The admin API's answer, as the test's oracle. */
  const adminGet = async (path: string): Promise<Json> => {
    const response = await sidecar.request('GET', path, { token: await sidecar.tokenFor(adminId) });
    assert.equal(response.status, 200, path);
    return (await response.json()) as Json;
  };

  /** A purchase the way a caller makes one: Checkout at Stripe, then Stripe's signed webhook. */
  const buy = async (userId: string, packageId = 'starter_1h') => {
    buyers.add(userId);
    const started = await sidecar.request('POST', '/time/purchase', { token: await sidecar.tokenFor(userId), body: { package_id: packageId } });
    assert.equal(started.status, 200, await started.clone().text());
    const { checkout_session_id: sessionId } = (await started.json()) as Json;
    const { session, paymentIntent } = fake.completeCheckoutSession(sessionId);
    const delivered = await sidecar.deliver(fake.event('checkout.session.completed', session));
    assert.equal(delivered.status, 200, await delivered.clone().text());
    return { amount: session.amount_total!, paymentIntentId: paymentIntent!.id };
  };

  /** A finished call, billed by the store like the agent's calls. */
  const seedCall = async (userId: string) => {
    const started = await sidecar.store.startSession({ userId, externalKey: `${userId}:web-admin`, roomName: 'room-web-admin' });
    await sidecar.store.endSession({ sessionId: started.session_id, reason: 'caller_left' });
  };

  /** Money as the page writes it: the browser's own Intl, so the test does not depend on the machine's locale. */
  const money = (page: Page, cents: number) =>
    page.evaluate((c) => new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' }).format(c / 100), cents);

  const statValue = (page: Page, region: string, label: string) =>
    page.getByRole('region', { name: region }).locator('.stat').filter({ has: page.getByText(label, { exact: true }) }).locator('.value');

  const openAdmin = async (options: { phone?: boolean } = {}): Promise<OpenedPage> => {
    const opened = await openPage(browser, options);
    await signInLocally(opened.page, sidecar.url, { userId: adminId, admin: true, path: '/admin' });
    await opened.page.getByRole('heading', { name: 'MindBot administration', level: 1 }).waitFor();
    await opened.page.getByRole('heading', { name: 'Revenue', level: 2 }).waitFor();
    return opened;
  };

  /**
   * No CSP violation and no console error, except the failed loads the test provoked on purpose: Chromium
   * logs each 4xx answer the page then shows (a refused form, a refusal), and exactly that many may appear.
   */
  const assertClean = (problems: OpenedPage['problems'], expected: { status: number; count: number } | null = null) => {
    assert.deepEqual(problems.cspViolations, []);
    const provoked = expected ? new RegExp(`^Failed to load resource: the server responded with a status of ${expected.status} `) : null;
    assert.deepEqual(problems.consoleErrors.filter((e) => !provoked?.test(e)), []);
    assert.equal(problems.consoleErrors.length, expected?.count ?? 0, problems.consoleErrors.join('\n'));
  };

  const openReport = async (page: Page, userId: string) => {
    const users = page.getByRole('table', { name: 'Users' });
    await users.getByRole('button', { name: userId }).click();
    const report = page.getByRole('region', { name: `Report for user ${userId}` });
    await report.getByText('Balance', { exact: true }).waitFor();
    return report;
  };

  it('shows the revenue of a purchase made through Stripe, as the revenue report answers it', async () => {
    const buyer = newUserId();
    const { amount } = await buy(buyer);
    const revenue = await adminGet('/admin/analytics/revenue?days=30');
    assert.equal(revenue.total_revenue_cents, amount, 'the only purchase so far');
    const starter = revenue.package_stats.find((p: Json) => p.package_id === 'starter_1h');
    assert.equal(starter.revenue_cents, amount);

    const { page, problems, close } = await openAdmin();
    try {
      const expected = await money(page, amount);
      assert.equal(await statValue(page, 'Revenue', 'Total revenue').textContent(), expected);
      assert.equal(await statValue(page, 'Revenue', 'Payments').textContent(), String(revenue.total_transactions));
      const line = page.getByRole('table', { name: 'Per package' }).getByRole('row', { name: new RegExp(starter.name) });
      assert.deepEqual(await line.getByRole('cell').allTextContents(),
        [String(starter.transactions), await money(page, starter.revenue_cents), await money(page, starter.refunds_cents)]);
      // The chart describes itself, and its figures are in a table for those who cannot see it.
      const chart = page.getByRole('img', { name: /Revenue per day/ });
      assert.match((await chart.getAttribute('aria-labelledby'))!, /desc/);
      const today = revenue.daily_revenue.at(-1);
      assert.equal(await page.locator('.bar-chart desc').first().textContent(),
        `${revenue.daily_revenue.length} days from ${revenue.daily_revenue[0].date} to ${today.date}; the highest is ${expected} on ${today.date}.`);
      await page.getByText('Revenue per day as a table').click();
      assert.equal(await page.getByRole('row', { name: today.date }).getByRole('cell').textContent(), expected);
      await screenshot(page, 'admin-revenue');
      await assertAccessible(page, 'the admin page with revenue, usage, users and tiers');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the admin page, dark scheme');
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('refuses a signed-in user who is not an administrator, with no figures', async () => {
    const { page, problems, close } = await openPage(browser);
    try {
      await signInLocally(page, sidecar.url, { path: '/admin' });
      await page.getByRole('heading', { name: 'Administrators only', level: 1 }).waitFor();
      assert.match(await page.getByRole('alert').textContent() ?? '', /for MindBot administrators/);
      assert.equal(await page.getByRole('heading', { name: 'Revenue' }).count(), 0);
      assert.equal(await page.getByRole('region').count(), 0);
      assert.doesNotMatch(await page.locator('main').innerText(), /\$|\d+\.\d\d/);
      await screenshot(page, 'admin-refused');
      await assertAccessible(page, 'the admin page refusing a plain user');
      // The admin API's 403 on the first request: the only one, since no other panel asked.
      assertClean(problems, { status: 403, count: 1 });
    } finally {
      await close();
    }
  });

  it('shows usage after a call, the buyer with their balance in the users list, and their report', async () => {
    const buyer = newUserId();
    await buy(buyer);
    await seedCall(buyer);
    const usage = await adminGet('/admin/analytics/usage?days=30');
    assert.ok(usage.total_sessions >= 1);
    const listed = (await adminGet('/admin/users?limit=20&offset=0')).users.find((u: Json) => u.user_id === buyer);
    assert.ok(listed.balance_seconds < 3600, 'the call was billed');
    const report = await adminGet(`/admin/reports/user/${buyer}`);

    const { page, problems, close } = await openAdmin();
    try {
      await statValue(page, 'Usage', 'Calls').waitFor();
      assert.equal(await statValue(page, 'Usage', 'Active users').textContent(), String(usage.active_users));
      assert.equal(await statValue(page, 'Usage', 'Calls').textContent(), String(usage.total_sessions));
      assert.equal(await statValue(page, 'Usage', 'Hours used').textContent(),
        await page.evaluate((h) => new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 }).format(h), usage.total_hours_used));
      assert.equal(await statValue(page, 'Usage', 'Average call').textContent(),
        `${await page.evaluate((m) => new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 }).format(m), usage.avg_session_minutes)} min`);

      const row = page.getByRole('table', { name: 'Users' }).getByRole('row', { name: new RegExp(buyer) });
      assert.equal(await row.getByRole('cell').first().textContent(), formatDuration(listed.balance_seconds));
      await screenshot(page, 'admin-usage-users');
      await assertAccessible(page, 'the admin page with usage and users');

      const opened = await openReport(page, buyer);
      assert.equal(await page.evaluate('document.activeElement?.id'), 'user-report-title', 'the keyboard moves to the report');
      assert.equal(await opened.locator('.stat').filter({ hasText: 'Balance' }).locator('.value').textContent(),
        formatDuration(report.balance.total_seconds));
      const calls = opened.getByRole('table', { name: 'Calls' }).locator('tbody tr');
      assert.equal(await calls.count(), report.sessions.length);
      assert.equal(await calls.first().getByRole('cell').nth(3).textContent(), formatDuration(report.sessions[0].billed_seconds));
      const payments = opened.getByRole('table', { name: 'Payments' }).locator('tbody tr');
      assert.equal(await payments.count(), 1);
      assert.match(await payments.first().innerText(), /starter_1h/);
      await opened.getByRole('heading', { name: 'Calls' }).scrollIntoViewIfNeeded();
      await screenshot(page, 'admin-user-report');
      await assertAccessible(page, 'the admin page with a user report');
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('creates, edits and deactivates a tier, showing the API\'s validation error next to the form', async () => {
    const { page, problems, close } = await openAdmin();
    try {
      const tiers = page.getByRole('region', { name: 'Pricing tiers' });
      await tiers.getByRole('button', { name: 'New tier' }).click();
      const form = tiers.getByRole('form', { name: 'New tier' });
      await form.getByLabel('Tier id').fill('Gold Tier');
      await form.getByLabel('Name').fill('Gold Pack');
      await form.getByLabel('Hours of talk time').fill('2');
      await form.getByLabel('Bonus minutes').fill('10');
      await form.getByLabel('Price in cents').fill('1999');
      await form.getByRole('button', { name: 'Create tier' }).click();
      const alert = form.getByRole('alert');
      await alert.waitFor();
      assert.match(await alert.textContent() ?? '', /Not saved\. The server said: id: a tier id of 2 to 40 lower-case letters/);
      const idInput = form.getByLabel('Tier id');
      assert.equal(await idInput.getAttribute('aria-invalid'), 'true');
      // The field's own message is tied to it (aria-describedby), so a screen reader reads it with the field.
      const describedBy = (await idInput.getAttribute('aria-describedby')) ?? '';
      const described = await page.evaluate((ids) => ids.map((id) =>
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- runs in the page; the tests compile without the DOM's types
        (globalThis as any).document.getElementById(id)?.textContent).join(' '), describedBy.split(' '));
      assert.match(described, /a tier id of 2 to 40/);
      assert.ok(!(await adminGet('/admin/tiers')).pricing_tiers.some((t: Json) => t.name === 'Gold Pack'), 'nothing written');
      await screenshot(page, 'admin-tier-invalid');
      await assertAccessible(page, 'the new-tier form with a validation error');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the new-tier form with a validation error, dark scheme');
      await page.emulateMedia({ colorScheme: 'light' });

      await idInput.fill('gold_2h');
      await form.getByRole('button', { name: 'Create tier' }).click();
      await tiers.getByRole('status').getByText('Created the tier Gold Pack (gold_2h).').waitFor();
      let gold = (await adminGet('/admin/tiers')).pricing_tiers.find((t: Json) => t.id === 'gold_2h');
      assert.deepEqual([gold.base_seconds, gold.bonus_seconds, gold.price_cents, gold.active], [7200, 600, 1999, true]);
      const row = tiers.getByRole('row', { name: /Gold Pack/ });
      await row.getByText(await money(page, 1999)).waitFor();
      assert.match(await row.innerText(), /2 h 10 min/);
      await screenshot(page, 'admin-tier-created');
      await assertAccessible(page, 'the tiers with a new tier');

      await tiers.getByRole('button', { name: 'Edit Gold Pack' }).click();
      const edit = tiers.getByRole('form', { name: 'Edit Gold Pack' });
      assert.equal(await edit.getByLabel('Price in cents').inputValue(), '1999');
      await edit.getByLabel('Price in cents').fill('2199');
      await edit.getByRole('button', { name: 'Save changes' }).click();
      await tiers.getByRole('status').getByText('Saved the tier Gold Pack.').waitFor();
      await row.getByText(await money(page, 2199)).waitFor();
      gold = (await adminGet('/admin/tiers')).pricing_tiers.find((t: Json) => t.id === 'gold_2h');
      assert.deepEqual([gold.price_cents, gold.base_seconds, gold.bonus_seconds], [2199, 7200, 600], 'only the price changed');

      await tiers.getByRole('button', { name: 'Deactivate Gold Pack' }).click();
      await tiers.getByRole('status').getByText(/Deactivated Gold Pack/).waitFor();
      await row.getByRole('cell', { name: 'Inactive' }).waitFor();
      gold = (await adminGet('/admin/tiers')).pricing_tiers.find((t: Json) => t.id === 'gold_2h');
      assert.equal(gold.active, false);
      const pricing = (await (await sidecar.request('GET', '/time/pricing')).json()) as Json;
      assert.ok(!pricing.pricing_tiers.some((t: Json) => t.id === 'gold_2h'), 'gone from the public price list');
      assert.equal(await tiers.getByRole('button', { name: 'Deactivate Gold Pack' }).count(), 0);
      await screenshot(page, 'admin-tier-deactivated');
      assertClean(problems, { status: 400, count: 1 }); // the bad tier id
    } finally {
      await close();
    }
  });

  it('adjusts a user\'s time with a reason and shows the API\'s answer', async () => {
    const buyer = newUserId();
    await buy(buyer);
    const { page, problems, close } = await openAdmin();
    try {
      const report = await openReport(page, buyer);
      const form = report.getByRole('form', { name: 'Adjust time' });
      await form.getByLabel('Amount').fill('30');
      await form.getByRole('button', { name: 'Add time' }).click();
      await form.getByRole('alert').getByText(/reason/).waitFor();
      assert.equal(await form.getByLabel(/^Reason/).getAttribute('aria-invalid'), 'true');
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 3600, 'a refused adjustment changes nothing');
      await screenshot(page, 'admin-adjust-invalid');
      await assertAccessible(page, 'the adjust form with a validation error');

      await form.getByLabel(/^Reason/).fill('support: dropped call');
      await form.getByRole('button', { name: 'Add time' }).click();
      await form.getByRole('status').getByText('Added 30 min. Balance now 1 h 30 min.').waitFor();
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 3600 + 1800);

      await form.getByLabel('Remove time').check();
      await form.getByLabel('Amount').fill('90');
      await form.getByLabel('Unit').selectOption('seconds');
      await form.getByLabel(/^Reason/).fill('double credit');
      await form.getByRole('button', { name: 'Remove time' }).click();
      await form.getByRole('status').getByText('Removed 1 min. Balance now 1 h 28 min.').waitFor();
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 3600 + 1800 - 90);
      // The report and the list follow the API.
      await report.locator('.stat').filter({ hasText: 'Balance' }).locator('.value').getByText('1 h 28 min').waitFor();
      await page.getByRole('table', { name: 'Users' }).getByRole('row', { name: new RegExp(buyer) }).getByText('1 h 28 min').waitFor();
      const ledger = (await adminGet(`/admin/reports/user/${buyer}`)).ledger as Json[];
      assert.ok(ledger.some((l) => l.reason === `support: dropped call (by admin ${adminId})` && l.seconds === 1800));
      await report.getByRole('table', { name: 'Ledger' }).getByText(`double credit (by admin ${adminId})`).waitFor();
      await form.scrollIntoViewIfNeeded();
      await screenshot(page, 'admin-adjusted');
      await assertAccessible(page, 'the adjust form after an adjustment');
      assertClean(problems, { status: 400, count: 1 }); // the adjustment without a reason
    } finally {
      await close();
    }
  });

  it('refunds a payment from the user report through Stripe and says the card follows Stripe\'s confirmation', async () => {
    const buyer = newUserId();
    const { amount, paymentIntentId } = await buy(buyer);
    const { page, problems, close } = await openAdmin();
    try {
      const report = await openReport(page, buyer);
      await report.getByRole('button', { name: /^Refund the .* payment of/ }).click();
      const form = report.getByRole('form', { name: /^Refund the/ });
      await form.getByRole('button', { name: 'Review refund' }).click();
      // Nothing used yet: the unused time is worth the whole payment, and an empty amount refunds it.
      await form.getByText(`refundable: ${await money(page, amount)}`, { exact: false }).waitFor();
      const confirm = form.getByRole('group', { name: /\(the unused time\) of this payment/ });
      await confirm.waitFor();
      assert.equal(fake.requests('POST /v1/refunds').length, 0, 'nothing sent before the confirmation');
      await screenshot(page, 'admin-refund-confirm');
      await assertAccessible(page, 'the refund form asking for confirmation');
      await confirm.getByRole('button', { name: 'Yes, refund' }).click();

      const status = form.getByRole('status');
      await status.getByText(`Stripe accepted the refund of ${await money(page, amount)}`, { exact: false }).waitFor();
      assert.match(await status.innerText(), /The time card follows when Stripe confirms the refund/);
      const sent = fake.lastRequest('POST /v1/refunds')!;
      assert.equal(sent.params.payment_intent, paymentIntentId);
      assert.equal(sent.params.amount, String(amount));
      assert.equal(sent.params.reason, 'requested_by_customer');
      assert.match(sent.idempotencyKey ?? '', /^refund:/);
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 3600, 'the card waits for Stripe\'s webhook');
      await screenshot(page, 'admin-refund-requested');
      await assertAccessible(page, 'the refund form after the refund was sent');

      // Stripe confirms: the webhook takes the time back, and the refreshed report shows it.
      const refundedCharge = [...fake.charges.values()].find((c) => c.payment_intent === paymentIntentId)!;
      assert.equal((await sidecar.deliver(fake.event('charge.refunded', refundedCharge))).status, 200);
      await report.getByRole('button', { name: 'Refresh report' }).click();
      await report.getByRole('table', { name: 'Payments' }).getByText('refunded', { exact: true }).waitFor();
      await report.locator('.stat').filter({ hasText: 'Balance' }).locator('.value').getByText('0 min').waitFor();
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 0);
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('lists the Stripe events that need attention, as GET /admin/attention answers them', async () => {
    // A purchase naming a package this database lacks: acknowledged to Stripe, kept for a decision.
    const buyer = newUserId();
    buyers.add(buyer);
    const event = stripeEvent('checkout.session.completed',
      checkoutSession(purchaseIds(), { userId: buyer, packageId: 'platinum_9h', amount: 9999 }));
    const delivered = await sidecar.deliver(event);
    assert.equal(delivered.status, 200, await delivered.clone().text());
    const list = await adminGet('/admin/attention?limit=50');
    const item = list.items.find((i: Json) => i.event_id === event.id);
    assert.equal(item.code, 'unknown_tier');

    const { page, problems, close } = await openAdmin();
    try {
      const panel = page.getByRole('region', { name: 'Needs attention' });
      await panel.getByText(list.total === 1 ? 'One Stripe event could not be applied' : `${list.total} Stripe events could not be applied`,
        { exact: false }).waitFor();
      const row = panel.getByRole('row', { name: new RegExp(event.id as string) });
      const text = await row.innerText();
      assert.ok(text.includes(item.message) && text.includes(buyer), text);
      await panel.scrollIntoViewIfNeeded();
      await screenshot(page, 'admin-attention');
      await assertAccessible(page, 'the admin page listing Stripe events that need attention');
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('offers a refund of the unused time only, and refunds more only with the override ticked (the API likewise)', async () => {
    const buyer = newUserId();
    const { amount, paymentIntentId } = await buy(buyer);
    await sidecar.store.deductTime({ userId: buyer, seconds: 900, idempotencyKey: `${buyer}:used-a-quarter` });
    const paymentId = (await adminGet(`/admin/reports/user/${buyer}`)).payments[0].payment_id as string;
    const quote = await adminGet(`/admin/payments/${paymentId}`);
    const unusedWorth = Math.floor((amount * 2700) / 3600);
    assert.deepEqual([quote.card_unused_seconds, quote.unused_refundable_cents, quote.refundable_cents], [2700, unusedWorth, amount]);
    // The API refuses more than the unused time without the override, and sends nothing to Stripe.
    const refundsBefore = fake.requests('POST /v1/refunds').length;
    const refused = await sidecar.request('POST', `/admin/payments/${paymentId}/refund`,
      { token: await sidecar.tokenFor(adminId), body: { amount_cents: amount } });
    assert.equal(refused.status, 409);
    assert.equal(((await refused.json()) as Json).error.code, 'exceeds_unused_time');
    assert.equal(fake.requests('POST /v1/refunds').length, refundsBefore);

    const { page, problems, close } = await openAdmin();
    try {
      const report = await openReport(page, buyer);
      await report.getByRole('button', { name: /^Refund the .* payment of/ }).click();
      const form = report.getByRole('form', { name: /^Refund the/ });
      await form.getByText(`Unused time: 45 min of 1 h, refundable: ${await money(page, unusedWorth)}`, { exact: false }).waitFor();
      await form.getByLabel(/^Amount to refund/).fill((amount / 100).toFixed(2));
      await form.getByRole('button', { name: 'Review refund' }).click();
      await form.getByRole('alert').getByText(`The unused time is worth ${await money(page, unusedWorth)}`, { exact: false }).waitFor();
      assert.equal(await form.getByRole('group', { name: /of this payment/ }).count(), 0, 'no confirmation offered');
      await screenshot(page, 'admin-refund-beyond-unused');
      await assertAccessible(page, 'the refund form refusing more than the unused time');

      await form.getByLabel('Refund more than the unused time').check();
      await form.getByRole('button', { name: 'Review refund' }).click();
      const confirm = form.getByRole('group', { name: /This is more than the unused time is worth/ });
      await confirm.getByRole('button', { name: 'Yes, refund' }).click();
      await form.getByRole('status').getByText(`Stripe accepted the refund of ${await money(page, amount)}`, { exact: false }).waitFor();
      const sent = fake.lastRequest('POST /v1/refunds')!;
      assert.deepEqual([sent.params.payment_intent, sent.params.amount], [paymentIntentId, String(amount)]);

      // Stripe confirms: the card gives back what is unused, and the books still balance.
      const refundedCharge = [...fake.charges.values()].find((c) => c.payment_intent === paymentIntentId)!;
      assert.equal((await sidecar.deliver(fake.event('charge.refunded', refundedCharge))).status, 200);
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 0);
      const books = await adminGet('/admin/books');
      assert.equal(books.ok, true, JSON.stringify(books));
      await page.getByRole('button', { name: 'Check the books again' }).click();
      const booksRegion = page.getByRole('region', { name: 'Books' });
      await booksRegion.getByText('The books balance.').waitFor();
      const usd = books.cents.by_currency.find((m: Json) => m.currency === 'usd');
      // The Refunded column of the USD row shows the API's figure once the panel has read the books again.
      await booksRegion.getByRole('table', { name: /^Money/ }).getByRole('row', { name: /USD/ }).getByRole('cell').nth(2)
        .getByText(await money(page, usd.refunded_cents), { exact: true }).waitFor();
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('pages the users list by 20: the position, Next by keyboard, the rest on page 2, and Previous back', async () => {
    // More than a page of users with a balance, on top of those the other tests bought for.
    const seeded = Array.from({ length: 23 }, () => newUserId());
    for (const userId of seeded) {
      await sidecar.store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `users-paging:${userId}` });
    }
    const first = await adminGet('/admin/users?limit=20&offset=0');
    const second = await adminGet('/admin/users?limit=20&offset=20');
    const total = first.total_users as number;
    assert.equal(second.total_users, total);
    assert.ok(total > 20 && total <= 40, `two pages of users: ${total}`);
    const apiIds = [...first.users, ...second.users].map((u: Json) => u.user_id as string);
    assert.equal(apiIds.length, total);
    // Exactly the users seeded here and those bought for earlier in this file, nobody else and nobody twice.
    assert.deepEqual([...apiIds].sort(), [...new Set([...seeded, ...buyers])].sort());

    const { page, problems, close } = await openAdmin();
    try {
      const users = page.getByRole('region', { name: 'Users' });
      const table = users.getByRole('table', { name: 'Users' });
      const shownIds = () => table.locator('tbody th button').allTextContents();
      const shownBalances = () => table.locator('tbody tr').evaluateAll((rows) =>
        rows.map((r) => (r as unknown as { querySelector(s: string): { textContent: string } }).querySelector('td')!.textContent));
      const previous = users.getByRole('button', { name: 'Previous page' });
      const next = users.getByRole('button', { name: 'Next page' });

      await users.getByText(`Users 1–20 of ${total}, most recently active first.`).waitFor();
      assert.equal(await table.locator('tbody tr').count(), 20);
      assert.deepEqual(await shownIds(), first.users.map((u: Json) => u.user_id));
      assert.deepEqual(await shownBalances(), first.users.map((u: Json) => formatDuration(u.balance_seconds)));
      assert.ok(await previous.isDisabled(), 'no page before the first');
      assert.ok(await next.isEnabled());
      const pageOne = await shownIds();

      // The next page with the keyboard: focus the button, press Enter.
      await next.focus();
      await page.keyboard.press('Enter');
      await users.getByText(`Users 21–${total} of ${total}, most recently active first.`).waitFor();
      assert.equal(await table.locator('tbody tr').count(), total - 20);
      assert.deepEqual(await shownIds(), second.users.map((u: Json) => u.user_id));
      assert.deepEqual(await shownBalances(), second.users.map((u: Json) => formatDuration(u.balance_seconds)));
      assert.ok(await next.isDisabled(), 'no page after the last');
      assert.ok(await previous.isEnabled());
      // The pressed button is now disabled: the focus is where the new page starts, not lost to the body.
      assert.match(await page.evaluate('document.activeElement.textContent') as string, /^Users 21–/);
      const pageTwo = await shownIds();
      assert.deepEqual([...pageOne, ...pageTwo].sort(), [...apiIds].sort(), 'both pages together are every user, once');
      await users.scrollIntoViewIfNeeded();
      await screenshot(page, 'admin-users-page-2');
      await assertAccessible(page, 'the admin users list on its second page');

      await previous.click();
      await users.getByText(`Users 1–20 of ${total}, most recently active first.`).waitFor();
      assert.deepEqual(await shownIds(), pageOne);
      assert.ok(await previous.isDisabled());
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('fits a phone-sized screen', async () => {
    const buyer = newUserId();
    await buy(buyer);
    await seedCall(buyer);
    const { page, problems, close } = await openAdmin({ phone: true });
    // The layout width, not window.innerWidth: a phone browser zooms out to show a page wider than its screen.
    const fits = async () => assert.ok(await page.evaluate('document.documentElement.scrollWidth') as number <= 390,
      'no sideways scrolling of the page (wide tables scroll inside their box)');
    try {
      await statValue(page, 'Usage', 'Calls').waitFor();
      await page.getByRole('table', { name: 'Pricing tiers' }).waitFor();
      await fits();
      await screenshot(page, 'admin-phone');
      await assertAccessible(page, 'the admin page on a phone');
      const report = await openReport(page, buyer);
      await report.getByRole('table', { name: 'Calls' }).waitFor();
      await fits();
      // Wider than the phone, the calls table scrolls in its own box: the keyboard reaches it and scrolls it.
      const callsBox = report.getByRole('group', { name: 'Calls' });
      assert.equal(await callsBox.getAttribute('tabindex'), '0');
      await callsBox.focus();
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction((box) => (box as unknown as { scrollLeft: number }).scrollLeft > 0, await callsBox.elementHandle(), { timeout: 5_000 });
      await report.scrollIntoViewIfNeeded();
      await screenshot(page, 'admin-phone-user-report');
      await assertAccessible(page, 'the admin user report on a phone');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the admin user report on a phone, dark scheme');
      assertClean(problems);
    } finally {
      await close();
    }
  });
});
