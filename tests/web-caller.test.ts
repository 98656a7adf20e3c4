// The caller's page in headless Chromium against the real sidecar, the test database and a local fake of
// Stripe's API: the balance, a purchase from the Buy button through Checkout and its signed webhook to the new
// card, a gift's code passed on and redeemed by someone else, every refusal of a code in its own words, the
// history with its month chart, the low-balance warning, and the page on a phone.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { CODE_ALPHABET, checkSymbol, formatCode } from '../src/shared/activation-code.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';
import { assertAccessible, launchBrowser, openPage, SCREENSHOT_DIR, screenshot, signInLocally, type OpenedPage } from './helpers/browser.ts';

/**
 * A refusal the page shows on purpose (a 4xx from the API) makes Chromium log the failed fetch as a console
 * error, "Failed to load resource: … status of 404 (Not Found)". Only those, with the statuses expected, are
 * left out; anything else logged is a failure.
 */
function unexpectedErrors(errors: string[], expectedStatuses: number[]): string[] {
  return errors.filter((text) => {
    const match = /^Failed to load resource: the server responded with a status of (\d{3})\b/.exec(text);
    return !(match && expectedStatuses.includes(Number(match[1])));
  });
}

function assertClean(opened: OpenedPage, expectedStatuses: number[] = []): void {
  assert.deepEqual(opened.problems.cspViolations, []);
  assert.deepEqual(unexpectedErrors(opened.problems.consoleErrors, expectedStatuses), []);
}

/** A code no card has: eleven random symbols and their check symbol. */
function unknownCode(): string {
  let body = '';
  for (let i = 0; i < 11; i++) body += CODE_ALPHABET[Math.floor(Math.random() * CODE_ALPHABET.length)];
  return body + checkSymbol(body);
}

/** The same code with its first symbol changed: the check symbol no longer matches. */
function mistyped(code: string): string {
  const next = CODE_ALPHABET[(CODE_ALPHABET.indexOf(code[0]!) + 1) % CODE_ALPHABET.length]!;
  return next + code.slice(1);
}

describe('web app: the caller’s page', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let sidecar: TestSidecar;
  let browser: Browser;
  const stores: BillingStore[] = [];

  before(async () => {
    // The tests use dist/web as built: run `npx vite build` after changing src/web.
    db = await createPostgresDatabase();
    fake = await startFakeStripe();
    sidecar = await startSidecar(db, {
      web: true, stripe: fake.client(),
      successUrl: (url) => `${url}/purchase/success?session_id={CHECKOUT_SESSION_ID}`,
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await Promise.all(stores.map((s) => s.close()));
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  /** A store billing by a clock the test sets (for calls and for cards made in the past). */
  const storeAt = (clock: TestClock) => {
    const store = db.store(clock.now);
    stores.push(store);
    return store;
  };

  const signIn = async (page: Page, userId: string, path = '/') => {
    await signInLocally(page, sidecar.url, { userId, path });
    await page.getByRole('heading', { name: 'Your MindBot time' }).waitFor();
  };

  /** Stripe's hosted page is not loaded: the browser only has to be sent there. */
  const stubCheckoutPage = (page: Page) =>
    page.route('https://checkout.stripe.test/**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>Stripe Checkout</title><h1>Stripe Checkout</h1>' }));

  /** What Stripe does once the buyer paid: the session completes and its signed webhook reaches the sidecar. */
  const payAtStripe = async (sessionId: string) => {
    const paid = fake.completeCheckoutSession(sessionId);
    const response = await sidecar.deliver(fake.event('checkout.session.completed', paid.session));
    assert.equal(response.status, 200, await response.clone().text());
    return paid;
  };

  /** A purchase started through the API (as the Buy button does) and paid: returns the Checkout Session. */
  const buyThroughApi = async (userId: string, packageId: string, gift = false) => {
    const response = await sidecar.request('POST', '/time/purchase', {
      token: await sidecar.tokenFor(userId), body: { package_id: packageId, gift } });
    const started = (await response.json()) as { checkout_session_id: string };
    assert.equal(response.status, 200, JSON.stringify(started));
    return started.checkout_session_id;
  };

  const balanceSection = (page: Page) => page.getByRole('region', { name: 'Balance' });
  const purchaseSection = (page: Page) => page.getByRole('region', { name: 'Your purchase' });

  it('shows a new caller a zero balance, and the Buy button sends them to Stripe Checkout for that package', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    try {
      await signIn(page, user);
      const balance = balanceSection(page);
      await balance.getByText('No time left').waitFor();
      assert.ok(await balance.getByRole('link', { name: 'buy a time card' }).isVisible());
      assert.ok(await balance.getByRole('link', { name: 'redeem an activation code' }).isVisible());
      await page.getByRole('button', { name: 'Buy Basic Pack' }).waitFor();
      const basic = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Basic Pack' }) });
      assert.match(await basic.innerText(), /\$44\.99/);
      assert.match(await basic.innerText(), /30 min bonus/);
      assert.match(await basic.innerText(), /\$8\.18 per hour/);
      await screenshot(page, 'caller-zero-balance');
      await assertAccessible(page, 'the caller page at zero balance');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the caller page at zero balance, dark scheme');
      await page.emulateMedia({ colorScheme: 'light' });

      await stubCheckoutPage(page);
      await page.getByRole('button', { name: 'Buy Basic Pack' }).click();
      await page.waitForURL(/^https:\/\/checkout\.stripe\.test\//);
      const sent = fake.lastRequest('POST /v1/checkout/sessions')!;
      assert.equal(sent.params.client_reference_id, user);
      // The price shown travels with the purchase: the webhook grants exactly that (migrations/009).
      assert.deepEqual(sent.params.metadata, { user_id: user, package_id: 'basic_5h', gift: 'false',
        seconds: '19800', price_cents: '4499', currency: 'usd', tier_version: '1' });
      assert.equal(sent.params.success_url, `${sidecar.url}/purchase/success?session_id={CHECKOUT_SESSION_ID}`);
      assert.match(sent.idempotencyKey ?? '', new RegExp(`^checkout:${user}:[0-9a-f-]{36}$`), 'the page sent its own Idempotency-Key');
      const session = [...fake.checkoutSessions.values()].find((s) => s.client_reference_id === user)!;
      assert.equal(page.url(), session.url);
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('says so when the purchase cannot start, and that nothing was charged', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await signIn(page, newUserId());
      fake.failNext(1, 500, { path: 'POST /v1/checkout/sessions' });
      await page.getByRole('button', { name: 'Buy Starter Pack' }).click();
      const alert = page.getByRole('region', { name: 'Buy time' }).getByRole('alert');
      await alert.getByText('The payment provider could not be reached. Nothing was charged').waitFor();
      assert.equal(new URL(page.url()).origin, sidecar.url, 'the browser stayed on the page');
      await screenshot(page, 'caller-buy-error');
      await assertAccessible(page, 'the caller page with a purchase that could not start');
      assertClean(opened, [502]); // the refused purchase, shown on purpose
    } finally {
      await opened.close();
    }
  });

  it('without Stripe configured: shows the packages with their Buy buttons disabled and says why; a stale page that tries anyway shows the 503 as a sentence', async () => {
    // A second sidecar over the same database, built with no Stripe at all (as main.ts does without STRIPE_SECRET_KEY).
    const off = await startSidecar(db, { web: true, stripe: null });
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    const purchaseRequests: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/time/purchase') purchaseRequests.push(`${request.method()} ${request.url()}`);
    });
    try {
      // The server's side, as the page will meet it.
      const config = (await (await off.request('GET', '/app/config')).json()) as { purchases: { enabled: boolean } };
      assert.deepEqual(config.purchases, { enabled: false });
      const refused = await off.request('POST', '/time/purchase', { token: await off.tokenFor(user), body: { package_id: 'starter_1h', gift: false } });
      assert.equal(refused.status, 503);
      assert.match(await refused.text(), /payments_unavailable/);
      const { pricing_tiers: tiers } = (await (await off.request('GET', '/time/pricing')).json()) as { pricing_tiers: Array<{ name: string; price_display: string }> };
      assert.ok(tiers.length >= 2, 'packages are still on the price list');

      await signInLocally(page, off.url, { userId: user });
      await page.getByRole('heading', { name: 'Your MindBot time' }).waitFor();
      const buy = page.getByRole('region', { name: 'Buy time' });
      await buy.getByRole('status').getByText('Purchases are not available on this server right now.').waitFor();
      // Every package is shown with its price, and its Buy button is there but disabled.
      for (const tier of tiers) {
        const item = buy.getByRole('listitem').filter({ has: page.getByRole('heading', { name: tier.name }) });
        assert.match(await item.innerText(), new RegExp(tier.price_display.replace(/[$.]/g, '\\$&')));
        const button = buy.getByRole('button', { name: `Buy ${tier.name}` });
        assert.ok(await button.isVisible(), `Buy ${tier.name} is shown`);
        assert.ok(await button.isDisabled(), `Buy ${tier.name} is disabled`);
      }
      assert.equal(await buy.getByRole('button', { name: /^Buy / }).count(), tiers.length);
      // The disabled button cannot start a purchase, by mouse or keyboard: no request, the browser stays.
      await buy.getByRole('button', { name: `Buy ${tiers[0]!.name}` }).click({ force: true });
      await page.getByLabel('Buy as a gift').focus();
      await page.keyboard.press('Tab');
      assert.notEqual(await page.evaluate('document.activeElement?.textContent?.trim().startsWith("Buy")'), true, 'Tab skips the disabled Buy buttons');
      await page.waitForTimeout(300);
      assert.deepEqual(purchaseRequests, []);
      assert.equal(new URL(page.url()).origin, off.url, 'the browser stayed on the page');
      assert.equal(await buy.getByRole('alert').count(), 0);
      await screenshot(page, 'caller-purchases-off');
      await assertAccessible(page, 'the caller page with purchases not configured');
      assertClean(opened);

      // A page that still believes purchases are on (its config read before the server lost Stripe): the Buy
      // button is enabled, the server answers 503, and the page says so in a sentence without leaving.
      await page.route('**/app/config', async (route) => {
        const response = await route.fetch();
        const body = (await response.json()) as { purchases: { enabled: boolean } };
        await route.fulfill({ response, json: { ...body, purchases: { enabled: true } } });
      });
      await page.reload();
      const stale = buy.getByRole('button', { name: `Buy ${tiers[0]!.name}` });
      await stale.waitFor();
      assert.ok(await stale.isEnabled(), 'the stale page offers the purchase');
      await stale.click();
      await buy.getByRole('alert').getByText('Purchases are not available right now: payments are not set up on this server. Nothing was charged.').waitFor();
      assert.equal(purchaseRequests.length, 1, purchaseRequests.join('\n'));
      assert.equal(new URL(page.url()).origin, off.url, 'the browser stayed on the page');
      assert.ok(await stale.isEnabled(), 'the button is ready again');
      await screenshot(page, 'caller-purchases-off-attempted');
      await assertAccessible(page, 'the caller page after a purchase refused with 503');
      assertClean(opened, [503]); // the refused purchase, shown on purpose
    } finally {
      await opened.close();
      await off.close();
    }
  });

  it('back from Checkout: confirms the payment, shows the new card and the new balance, also when the webhook lands after the page opened', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    const user = newUserId();
    try {
      await signIn(page, user);
      await stubCheckoutPage(page);
      await page.getByRole('button', { name: 'Buy Basic Pack' }).click();
      await page.waitForURL(/^https:\/\/checkout\.stripe\.test\//);
      const sent = fake.lastRequest('POST /v1/checkout/sessions')!;
      const sessionId = (sent.response as { id: string }).id;
      await payAtStripe(sessionId);
      // Where Stripe sends the buyer back: the success URL with the session's id in it.
      await page.goto(String(sent.params.success_url).replace('{CHECKOUT_SESSION_ID}', sessionId));
      const landing = purchaseSection(page);
      await landing.getByText('of talk time was added to your balance').waitFor();
      assert.match(await landing.innerText(), /\$44\.99/);
      assert.match(await landing.innerText(), /5 h 30 min of talk time/);
      await balanceSection(page).getByText('5 h 30 min', { exact: true }).waitFor();
      // The card is named by its package's name, not its id.
      await balanceSection(page).getByRole('cell', { name: 'Purchased · Basic Pack' }).waitFor();
      await screenshot(page, 'caller-purchase-landed');
      await assertAccessible(page, 'the purchase confirmed, with the new card');

      // The page opens before Stripe's webhook arrives: it waits, then shows the card once it lands.
      const second = await buyThroughApi(user, 'starter_1h');
      fake.completeCheckoutSession(second);
      await page.goto(`${sidecar.url}/purchase/success?session_id=${second}`);
      await purchaseSection(page).getByText('Confirming your payment with Stripe').waitFor();
      await screenshot(page, 'caller-purchase-confirming');
      const session = fake.checkoutSessions.get(second)!;
      assert.equal((await sidecar.deliver(fake.event('checkout.session.completed', session))).status, 200);
      await purchaseSection(page).getByText('1 h of talk time was added').waitFor({ timeout: 10_000 });
      await balanceSection(page).getByText('6 h 30 min', { exact: true }).waitFor();
      assert.ok(fake.lastRequest(`POST /v1/checkout/sessions`), 'a session was made');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('after a minute without Stripe\'s confirmation, says nothing is lost; the card shows once it lands', async () => {
    const user = newUserId();
    const sessionId = await buyThroughApi(user, 'starter_1h');
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      // The page's clock is the test's: a minute of polling passes at once.
      await page.clock.install();
      const firstPoll = page.waitForResponse((r) => r.url().endsWith(`/time/purchase/checkout/${sessionId}`));
      await signIn(page, user, `/purchase/success?session_id=${sessionId}`);
      await purchaseSection(page).getByText('Confirming your payment with Stripe').waitFor();
      assert.deepEqual(await (await firstPoll).json(), { found: false });
      await page.waitForTimeout(200); // the next poll is scheduled once the first answer is read
      await page.clock.fastForward('01:05');
      const landing = purchaseSection(page);
      await landing.getByRole('status').getByText('Stripe has not confirmed your payment yet. Nothing is lost').waitFor();
      await screenshot(page, 'caller-purchase-not-yet');
      await assertAccessible(page, 'the purchase not confirmed yet');
      await payAtStripe(sessionId);
      await landing.getByRole('button', { name: 'Check again' }).click();
      await landing.getByText('1 h of talk time was added').waitFor();
      await balanceSection(page).getByText('1 h', { exact: true }).waitFor();
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('a cancelled checkout says nothing was charged', async () => {
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await signIn(page, newUserId(), '/purchase/cancel');
      await page.getByRole('heading', { name: 'Purchase cancelled' }).waitFor();
      await page.getByText('nothing was charged').waitFor();
      await screenshot(page, 'caller-purchase-cancelled');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('a gift: the buyer gets the activation code to pass on, and another caller redeems it typed loosely', async () => {
    const buyer = await openPage(browser);
    const friend = await openPage(browser);
    const buyerId = newUserId();
    const friendId = newUserId();
    try {
      const { page } = buyer;
      await buyer.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: sidecar.url });
      await signIn(page, buyerId);
      await stubCheckoutPage(page);
      await page.getByLabel('Buy as a gift').check();
      await page.getByRole('button', { name: 'Buy Starter Pack as a gift' }).click();
      await page.waitForURL(/^https:\/\/checkout\.stripe\.test\//);
      const sent = fake.lastRequest('POST /v1/checkout/sessions')!;
      assert.deepEqual(sent.params.metadata, { user_id: buyerId, package_id: 'starter_1h', gift: 'true',
        seconds: '3600', price_cents: '999', currency: 'usd', tier_version: '1' });
      const sessionId = (sent.response as { id: string }).id;
      await payAtStripe(sessionId);
      await page.goto(`${sidecar.url}/purchase/success?session_id=${sessionId}`);
      const landing = purchaseSection(page);
      await landing.getByText('Your gift of 1 h is ready').waitFor();
      const { rows } = await db.sql.query<{ activation_code: string }>(
        `select c.activation_code from public.time_cards c join public.payments p on p.card_id = c.id
          where p.stripe_checkout_session_id = $1`, [sessionId]);
      const code = rows[0]!.activation_code;
      assert.equal(await landing.locator('.big-code').innerText(), formatCode(code));
      await landing.getByRole('button', { name: `Copy code ${formatCode(code)}` }).click();
      await landing.getByText('Copied.').waitFor();
      assert.equal(await page.evaluate('navigator.clipboard.readText()'), formatCode(code));
      // The gift is listed with its code while nobody has redeemed it; the buyer's balance is unchanged.
      const gifts = page.getByRole('region', { name: 'Gifts you bought' });
      await gifts.getByText('Not redeemed yet').waitFor();
      assert.match(await gifts.innerText(), new RegExp(formatCode(code)));
      await balanceSection(page).getByText('No time left').waitFor();
      await screenshot(page, 'caller-gift-code');
      await assertAccessible(page, 'the caller page with a gift code to pass on');

      // The friend types it in lower case, with spaces and dashes where they please.
      await signIn(friend.page, friendId);
      await balanceSection(friend.page).getByText('No time left').waitFor();
      const loose = `${code.slice(0, 3)} ${code.slice(3, 7)}-${code.slice(7)}`.toLowerCase();
      await friend.page.getByRole('textbox', { name: 'Activation code' }).fill(loose);
      await friend.page.getByRole('button', { name: 'Redeem' }).click();
      const redeem = friend.page.getByRole('region', { name: 'Redeem a code' });
      await redeem.getByRole('status').getByText('Added 1 h to your time').waitFor();
      await balanceSection(friend.page).getByText('1 h', { exact: true }).waitFor();
      assert.equal(await friend.page.getByRole('textbox', { name: 'Activation code' }).inputValue(), '', 'the field is cleared');
      await screenshot(friend.page, 'caller-redeemed');
      await assertAccessible(friend.page, 'the caller page after a code was redeemed');

      // Back at the buyer's page, the gift reads as redeemed and its code is gone.
      await page.reload();
      await gifts.getByText('Redeemed', { exact: true }).waitFor();
      assert.doesNotMatch(await gifts.innerText(), new RegExp(formatCode(code)));
      assertClean(buyer);
      assertClean(friend);
    } finally {
      await buyer.close();
      await friend.close();
    }
  });

  it('tells each refusal of a code apart, in words the caller can act on', async () => {
    const user = newUserId();
    const other = newUserId();
    const grantGift = (store: BillingStore, key: string) =>
      store.grantCard({ userId: null, tierId: 'starter_1h', purchaserId: other, idempotencyKey: `${key}:${user}` });
    // Redeemed already (by someone else), expired (a gift made two years ago, redeemable for one), revoked.
    const used = await grantGift(sidecar.store, 'used');
    await sidecar.store.activateCard({ userId: other, code: used.activation_code });
    const expired = await grantGift(storeAt(new TestClock(new Date(Date.now() - 2 * 365 * 86_400_000))), 'expired');
    const revoked = await grantGift(sidecar.store, 'revoked');
    await sidecar.store.revokeCardTime({ cardId: revoked.id, seconds: 'all', kind: 'refund', idempotencyKey: `revoke:${user}` });

    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await signIn(page, user);
      const redeem = page.getByRole('region', { name: 'Redeem a code' });
      const field = page.getByRole('textbox', { name: 'Activation code' });
      const attempt = async (code: string, sentence: string, shot: string) => {
        await field.fill(code);
        await redeem.getByRole('button', { name: 'Redeem' }).click();
        await redeem.getByRole('alert').getByText(sentence).waitFor();
        assert.equal(await field.getAttribute('aria-invalid'), 'true');
        await screenshot(page, shot);
await assertAccessible(page, `the redeem error ${shot}`);
      };
      await attempt('', 'Enter the activation code first.', 'caller-redeem-empty');
      await attempt('hello', 'That is not an activation code: a code has 12 letters and digits', 'caller-redeem-malformed');
      await attempt(formatCode(mistyped(used.activation_code)), 'This code has a typo: one of its characters is wrong.', 'caller-redeem-mistyped');
      await attempt(formatCode(unknownCode()), 'No time card has this code.', 'caller-redeem-unknown');
      await attempt(used.activation_code, 'This code has already been redeemed, so it cannot add time again.', 'caller-redeem-used');
      await redeem.getByText('Details: this activation code has already been redeemed.').waitFor();
      await attempt(expired.activation_code.toLowerCase(), 'This code has expired and can no longer be redeemed.', 'caller-redeem-expired');
      await redeem.getByText(/Details: this activation code expired on \d{4}-\d{2}-\d{2}\./).waitFor();
      await attempt(revoked.activation_code, 'This time card was cancelled (its payment was refunded or disputed)', 'caller-redeem-revoked');
      await balanceSection(page).getByText('No time left').waitFor();
      assertClean(opened, [400, 404, 409, 410]); // each refusal above, shown on purpose
    } finally {
      await opened.close();
    }
  });

  it('asks a caller who tried too many wrong codes to wait', async () => {
    const user = newUserId();
    const token = await sidecar.tokenFor(user);
    for (let i = 0; i < 10; i++) {
      const response = await sidecar.request('POST', '/time/activate', { token, body: { activation_code: unknownCode() } });
      assert.equal(response.status, 404);
    }
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await signIn(page, user);
      await page.getByRole('textbox', { name: 'Activation code' }).fill(unknownCode());
      await page.getByRole('button', { name: 'Redeem' }).click();
      await page.getByRole('alert').getByText('Too many wrong codes in a short time. Please wait a few minutes').waitFor();
      await screenshot(page, 'caller-redeem-rate-limited');
      await assertAccessible(page, 'the redeem error for too many wrong codes');
      assertClean(opened, [429]); // the refusal shown on purpose
    } finally {
      await opened.close();
    }
  });

  it('shows past calls, payments with their refunds, this month’s usage and the month chart', async () => {
    const user = newUserId();
    const sessionId = await buyThroughApi(user, 'basic_5h');
    const { charge } = await payAtStripe(sessionId);
    // Stripe refunds $3.00 of the $44.99 (the charge in the event does not list its refunds: the sidecar asks Stripe).
    await fake.client().refunds.create({ charge: charge!.id, amount: 300 });
    const refund = await sidecar.deliver(fake.event('charge.refunded', fake.charges.get(charge!.id)!));
    assert.equal(refund.status, 200, await refund.clone().text());
    // A five-minute call, billed by the server's clock.
    const clock = new TestClock(new Date());
    const store = storeAt(clock);
    const call = await store.startSession({ userId: user, externalKey: `room:${user}`, roomName: `room-${user.slice(0, 8)}` });
    clock.advance(300);
    await store.endSession({ sessionId: call.session_id, reason: 'ended' });

    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await signIn(page, user);
      const history = page.getByRole('region', { name: 'History' });
      const calls = history.getByRole('table', { name: 'Your most recent calls' });
      await calls.waitFor();
      const callRow = calls.getByRole('row').nth(1);
      assert.match(await callRow.innerText(), /5 min\s+5 min\s+Ended/);
      const payments = history.getByRole('table', { name: 'Your payments and refunds' });
      const paymentRow = payments.getByRole('row').nth(1);
      await paymentRow.waitFor();
      assert.match(await paymentRow.innerText(), /Basic Pack\s+\$44\.99\s+Partly refunded: \$3\.00 back/);
      const month = new Date().toISOString().slice(0, 7);
      const monthName = new Date(`${month}-01T00:00:00Z`).toLocaleDateString('en-US', { month: 'long', year: 'numeric', timeZone: 'UTC' });
      await history.getByText(`Talk time in ${monthName}`).waitFor();
      // The chart's figures, as a screen reader gets them: six months, this one with the call.
      const chart = history.getByRole('table', { name: 'Talk time by month' });
      await chart.waitFor({ state: 'attached' });
      assert.equal(await chart.getByRole('row').count(), 1 + 6);
      assert.match(await chart.getByRole('row', { name: new RegExp(monthName) }).innerText(), /5 min\s+1$/);
      assert.equal(await history.locator('svg.chart rect.bar').count(), 6);
      assert.match(await history.locator('svg.chart title').last().textContent() ?? '', new RegExp(`${monthName}: 5 min in 1 call`));
      await screenshot(page, 'caller-history');
      await assertAccessible(page, 'the caller page with its history and month chart');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('warns when less than 30 minutes are left', async () => {
    const user = newUserId();
    await sidecar.store.adjustUserTime({ userId: user, seconds: 20 * 60, reason: 'test: a little time', idempotencyKey: `low:${user}` });
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await signIn(page, user);
      const balance = balanceSection(page);
      await balance.getByRole('status').getByText('Less than 30 minutes left.').waitFor();
      await balance.getByText('20 min', { exact: true }).waitFor();
      await screenshot(page, 'caller-low-balance');
      await assertAccessible(page, 'the caller page with cards and a low balance');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the caller page with cards and a low balance, dark scheme');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('works with the keyboard alone: Tab reaches Talk, the Buy buttons and the code field, Enter redeems, and the focus always shows', async () => {
    const user = newUserId();
    const gift = await sidecar.store.grantCard({ userId: null, tierId: 'starter_1h', purchaserId: newUserId(), idempotencyKey: `keyboard:${user}` });
    const opened = await openPage(browser);
    const { page } = opened;
    try {
      await signIn(page, user);
      // The focused element: its name as a screen reader would start to read it, and how its focus is drawn,
      // with the outline's contrast against the colour behind it (WCAG 1.4.11 asks 3:1 of a focus indicator).
      const focused = () => page.evaluate(`(() => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        const style = getComputedStyle(el);
        const rgb = (c) => { const m = c.match(/[\\d.]+/g).map(Number); return { r: m[0], g: m[1], b: m[2], a: m[3] ?? 1 }; };
        const luminance = ({ r, g, b }) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
          .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
        // The outline is drawn outside the element: behind it is the background of the nearest painted ancestor.
        let behind = el.parentElement;
        while (behind && rgb(getComputedStyle(behind).backgroundColor).a === 0) behind = behind.parentElement;
        const back = rgb(behind ? getComputedStyle(behind).backgroundColor : 'rgb(255, 255, 255)');
        const [hi, lo] = [luminance(rgb(style.outlineColor)), luminance(back)].sort((a, b) => b - a);
        return {
          name: (el.getAttribute('aria-label') || (el.labels && el.labels[0] && el.labels[0].textContent) || el.textContent || '').replace(/\\s+/g, ' ').trim(),
          tag: el.tagName.toLowerCase(),
          outline: style.outlineStyle + ' ' + style.outlineWidth,
          outlineWidth: parseFloat(style.outlineWidth),
          contrast: Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100,
        };
      })()`) as Promise<{ name: string; tag: string; outline: string; outlineWidth: number; contrast: number } | null>;
      const tabToCodeField = async (scheme: 'light' | 'dark') => {
        await page.emulateMedia({ colorScheme: scheme });
        // A fresh load: the keyboard starts at the top of the page, as a keyboard user does.
        await page.reload();
        await page.getByRole('button', { name: 'Buy Basic Pack' }).waitFor();
        await page.getByRole('button', { name: 'Talk to MindBot' }).waitFor();
        const reached: string[] = [];
        for (let presses = 0; presses < 40; presses++) {
          await page.keyboard.press('Tab');
          const now = await focused();
          assert.ok(now, 'the focus stays on the page');
          assert.ok(now.outlineWidth >= 2 && !now.outline.startsWith('none'), `${scheme}: the focus shows on ${now.tag} "${now.name}": outline ${now.outline}`);
          assert.ok(now.contrast >= 3, `${scheme}: the focus outline on ${now.tag} "${now.name}" stands out from its background: ${now.contrast}:1`);
          reached.push(`${now.tag}: ${now.name}`);
          if (now.tag === 'input' && now.name === 'Activation code') break;
        }
        const order = (name: string) => reached.findIndex((r) => r.startsWith(`button: ${name}`));
        assert.equal(reached.at(-1), 'input: Activation code', `Tab reaches the code field: ${reached.join(' | ')}`);
        assert.ok(order('Talk to MindBot') >= 0, `Tab reaches the Talk button: ${reached.join(' | ')}`);
        for (const name of ['Buy Starter Pack', 'Buy Basic Pack']) assert.ok(order(name) > order('Talk to MindBot'), `Tab reaches ${name} after Talk: ${reached.join(' | ')}`);
      };
      await tabToCodeField('dark');
      await screenshot(page, 'caller-keyboard-focus-dark');
      await tabToCodeField('light');
      await screenshot(page, 'caller-keyboard-focus');

      // Typed and sent with Enter, nothing clicked.
      await page.keyboard.type(gift.activation_code.toLowerCase());
      await page.keyboard.press('Enter');
      await page.getByRole('region', { name: 'Redeem a code' }).getByRole('status').getByText('Added 1 h to your time').waitFor();
      await balanceSection(page).getByText('1 h', { exact: true }).waitFor();
      // Tab goes on from the field to its button, whose focus shows too.
      await page.keyboard.press('Tab');
      assert.equal((await focused())?.name, 'Redeem');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('fits a phone-sized screen without sideways scrolling', async () => {
    const user = newUserId();
    await payAtStripe(await buyThroughApi(user, 'premium_10h'));
    await sidecar.store.adjustUserTime({ userId: user, seconds: 15 * 60, reason: 'test: goodwill', idempotencyKey: `phone:${user}` });
    await payAtStripe(await buyThroughApi(user, 'starter_1h', true));
    const clock = new TestClock(new Date());
    const store = storeAt(clock);
    const call = await store.startSession({ userId: user, externalKey: `phone:${user}`, roomName: `room-${user.slice(0, 8)}` });
    clock.advance(125);
    await store.endSession({ sessionId: call.session_id, reason: 'ended' });
    const opened = await openPage(browser, { phone: true });
    const { page } = opened;
    try {
      await signIn(page, user);
      await balanceSection(page).getByText('12 h 12 min', { exact: true }).waitFor();
      await page.getByRole('table', { name: 'Your payments and refunds' }).waitFor();
      await page.getByRole('region', { name: 'Gifts you bought' }).getByText('Not redeemed yet').waitFor();
      await page.getByRole('table', { name: 'Talk time by month' }).waitFor({ state: 'attached' });
      const widths = await page.evaluate('({ scroll: document.scrollingElement.scrollWidth, inner: innerWidth })') as { scroll: number; inner: number };
      assert.ok(widths.scroll <= widths.inner, `no horizontal scroll: ${JSON.stringify(widths)}`);
      await screenshot(page, 'caller-phone');
      await assertAccessible(page, 'the caller page on a phone');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the caller page on a phone, dark scheme');
      await page.emulateMedia({ colorScheme: 'light' });
      // Close-ups at the phone's width, to look at the parts that are tight.
      await page.getByRole('region', { name: 'History' }).screenshot({ path: join(SCREENSHOT_DIR, 'caller-phone-history.png') });
      await balanceSection(page).screenshot({ path: join(SCREENSHOT_DIR, 'caller-phone-balance.png') });
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });
});
