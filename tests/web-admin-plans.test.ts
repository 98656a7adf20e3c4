// The admin page's plan panels in headless Chromium against the real sidecar and the test database: plans are
// created, revised and retired through the form and checked against the admin API; subscribers, MRR, usage,
// invoices and meter drift rows are seeded as the metering SQL and Stripe's webhooks write them
// (tests/helpers/plan-fixtures.ts) and the page must show what the API answers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { charge, endedCall, planId, subscribe } from './helpers/plan-fixtures.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { assertAccessible, ensureWebBuilt, launchBrowser, openPage, screenshot, signInLocally, type OpenedPage } from './helpers/browser.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('web app: the admin page’s plans', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  let browser: Browser;
  const adminId = newUserId();

  before(async () => {
    ensureWebBuilt();
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { web: true, adminIds: [adminId] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await sidecar?.close();
    await db?.close();
  });

  const adminGet = async (path: string): Promise<Json> => {
    const response = await sidecar.request('GET', path, { token: await sidecar.tokenFor(adminId) });
    assert.equal(response.status, 200, path);
    return (await response.json()) as Json;
  };
  const versions = async (key: string) => ((await adminGet('/admin/plans')).plans as Json[])
    .filter((p) => p.key === key).map((p) => [p.version, p.status]);

  const money = (page: Page, cents: number, currency = 'USD') =>
    page.evaluate(([c, cur]) => new Intl.NumberFormat(undefined, { style: 'currency', currency: cur as string }).format((c as number) / 100),
      [cents, currency] as const);

  const openAdmin = async (): Promise<OpenedPage> => {
    const opened = await openPage(browser);
    await signInLocally(opened.page, sidecar.url, { userId: adminId, admin: true, path: '/admin' });
    await opened.page.getByRole('heading', { name: 'MindBot administration', level: 1 }).waitFor();
    await opened.page.getByRole('table', { name: 'Plans', exact: true }).waitFor();
    return opened;
  };

  /** No CSP violation and no console error except the refusals the test provoked (Chromium logs each 4xx). */
  const assertClean = (problems: OpenedPage['problems'], expected: { status: number; count: number } | null = null) => {
    assert.deepEqual(problems.cspViolations, []);
    const provoked = expected ? new RegExp(`^Failed to load resource: the server responded with a status of ${expected.status} `) : null;
    assert.deepEqual(problems.consoleErrors.filter((e) => !provoked?.test(e)), []);
    assert.equal(problems.consoleErrors.length, expected?.count ?? 0, problems.consoleErrors.join('\n'));
  };

  const described = (page: Page, ids: string) => page.evaluate((list) => list.split(' ').map((id) =>
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- runs in the page; the tests compile without the DOM's types
    (globalThis as any).document.getElementById(id)?.textContent ?? '').join(' '), ids);

  it('creates a pay-as-you-go and a tiered plan through the form; a mistake is named beside its field, before and after the API', async () => {
    const { page, problems, close } = await openAdmin();
    try {
      const panel = page.getByRole('region', { name: 'Plans', exact: true });
      await panel.getByRole('button', { name: 'New plan' }).click();
      let form = panel.getByRole('form', { name: 'New plan' });
      await form.getByLabel('Plan key').fill('web_payg');
      await form.getByLabel('Name').fill('Web PAYG');
      await form.getByLabel('Cents per minute').fill('3.5');
      await form.getByRole('button', { name: 'Create plan' }).click();
      await panel.getByRole('status').getByText('Created the plan Web PAYG (web_payg).').waitFor();
      const payg = ((await adminGet('/admin/plans')).plans as Json[]).find((p) => p.key === 'web_payg')!;
      assert.deepEqual([payg.kind, payg.version, payg.status, payg.default_cap_cents, payg.max_cap_cents,
        payg.tiers.map((t: Json) => [t.up_to_seconds, t.cents_per_minute])], ['payg', 1, 'active', 5000, 20_000, [[null, 3.5]]]);
      const paygRow = panel.getByRole('row', { name: /Web PAYG/ });
      // 3.5 cents a minute, exactly, and its hour.
      const rate = await page.evaluate(() => new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', minimumFractionDigits: 2,
        maximumFractionDigits: 6 }).format(0.035));
      assert.match(await paygRow.innerText(), new RegExp(`${escape(rate)}/min \\(${escape(await money(page, 210))}/h\\)`));

      // A tiered plan whose first tier has no bound: refused by the form before anything is sent.
      await panel.getByRole('button', { name: 'New plan' }).click();
      form = panel.getByRole('form', { name: 'New plan' });
      await form.getByLabel('Kind').selectOption({ label: 'Tiered by volume' });
      await form.getByLabel('Plan key').fill('web_volume');
      await form.getByLabel('Name').fill('Web Volume');
      await form.getByLabel('Tier 1: cents per minute').fill('6');
      await form.getByLabel('Tier 2: cents per minute').fill('3');
      await form.getByRole('button', { name: 'Create plan' }).click();
      await form.getByRole('alert').getByText('Not saved: correct the fields marked.').waitFor();
      const bound = form.getByLabel('Tier 1: up to minute');
      assert.equal(await bound.getAttribute('aria-invalid'), 'true');
      assert.match(await described(page, (await bound.getAttribute('aria-describedby'))!), /a whole number of minutes above 0/);
      assert.deepEqual(await versions('web_volume'), [], 'nothing sent');
      await screenshot(page, 'admin-plan-invalid');
      await assertAccessible(page, 'the new-plan form with a mistake named');

      await bound.fill('100');
      await form.getByRole('button', { name: 'Add a tier' }).click();
      await form.getByLabel('Tier 2: up to minute').fill('500');
      await form.getByLabel('Tier 3: cents per minute').fill('2');
      await form.getByRole('button', { name: 'Create plan' }).click();
      await panel.getByRole('status').getByText('Created the plan Web Volume (web_volume).').waitFor();
      const volume = ((await adminGet('/admin/plans')).plans as Json[]).find((p) => p.key === 'web_volume')!;
      assert.deepEqual(volume.tiers.map((t: Json) => [t.up_to_seconds, t.cents_per_minute]), [[6000, 6], [30_000, 3], [null, 2]]);
      assert.match(await panel.getByRole('row', { name: /Web Volume/ }).innerText(), /0–100 min: .*100–500 min: .*from 500 min: /s);

      // A key that is taken passes the form's rules; the API refuses it (409), and the form names the field.
      await panel.getByRole('button', { name: 'New plan' }).click();
      form = panel.getByRole('form', { name: 'New plan' });
      await form.getByLabel('Plan key').fill('web_payg');
      await form.getByLabel('Name').fill('Again');
      await form.getByLabel('Cents per minute').fill('1');
      await form.getByRole('button', { name: 'Create plan' }).click();
      await form.getByRole('alert').getByText(/^Not saved\. The server said: .*web_payg/).waitFor();
      const key = form.getByLabel('Plan key');
      assert.equal(await key.getAttribute('aria-invalid'), 'true');
      assert.match(await described(page, (await key.getAttribute('aria-describedby'))!), /web_payg/);
      assert.deepEqual(await versions('web_payg'), [[1, 'active']]);
      await form.getByRole('button', { name: 'Cancel' }).click();
      assertClean(problems, { status: 409, count: 1 });
    } finally {
      await close();
    }
  });

  it('creates a subscription with overage and a prepaid plan; caps the wrong way round are refused beside the field', async () => {
    const { page, problems, close } = await openAdmin();
    try {
      const panel = page.getByRole('region', { name: 'Plans', exact: true });
      await panel.getByRole('button', { name: 'New plan' }).click();
      const form = panel.getByRole('form', { name: 'New plan' });
      await form.getByLabel('Kind').selectOption({ label: 'Subscription + overage' });
      await form.getByLabel('Plan key').fill('web_team');
      await form.getByLabel('Name').fill('Web Team');
      await form.getByLabel('Currency').fill('EUR');
      await form.getByLabel('Monthly fee in cents').fill('2900');
      await form.getByLabel('Included minutes a month').fill('600');
      await form.getByLabel('Cents per minute').fill('4.5');
      await form.getByLabel('Default spending cap in cents').fill('30000');
      await form.getByLabel('Maximum spending cap in cents').fill('10000');
      await form.getByRole('button', { name: 'Create plan' }).click();
      await form.getByRole('alert').getByText('Not saved: correct the fields marked.').waitFor();
      const cap = form.getByLabel('Default spending cap in cents');
      assert.equal(await cap.getAttribute('aria-invalid'), 'true');
      assert.match(await described(page, (await cap.getAttribute('aria-describedby'))!), /cannot be more than the maximum cap/);
      assert.deepEqual(await versions('web_team'), [], 'nothing sent');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the new-plan form with a mistake named, dark scheme');
      await page.emulateMedia({ colorScheme: 'light' });

      await cap.fill('3000');
      await form.getByRole('button', { name: 'Create plan' }).click();
      await panel.getByRole('status').getByText('Created the plan Web Team (web_team).').waitFor();
      const team = ((await adminGet('/admin/plans')).plans as Json[]).find((p) => p.key === 'web_team')!;
      assert.deepEqual([team.kind, team.currency, team.monthly_fee_cents, team.included_seconds, team.default_cap_cents, team.max_cap_cents,
        team.tiers.map((t: Json) => t.cents_per_minute)], ['subscription', 'eur', 2900, 36_000, 3000, 10_000, [4.5]]);
      const row = await panel.getByRole('row', { name: /Web Team/ }).innerText();
      assert.ok(row.includes(`${await money(page, 2900, 'EUR')} a month, 600 min included`), row);

      await panel.getByRole('button', { name: 'New plan' }).click();
      const packs = panel.getByRole('form', { name: 'New plan' });
      await packs.getByLabel('Kind').selectOption({ label: 'Prepaid time packs' });
      assert.equal(await packs.getByLabel('Cents per minute').count(), 0, 'a prepaid plan has no rates: its prices are the packs');
      await packs.getByLabel('Plan key').fill('web_packs');
      await packs.getByLabel('Name').fill('Web Packs');
      await packs.getByRole('button', { name: 'Create plan' }).click();
      await panel.getByRole('status').getByText('Created the plan Web Packs (web_packs).').waitFor();
      const prepaid = ((await adminGet('/admin/plans')).plans as Json[]).find((p) => p.key === 'web_packs')!;
      assert.deepEqual([prepaid.kind, prepaid.tiers, prepaid.max_cap_cents], ['prepaid', [], null]);
      const first = prepaid.packs[0];
      assert.match(await panel.getByRole('row', { name: /Web Packs/ }).innerText(),
        new RegExp(`${escape(first.name)}: ${escape(await money(page, first.price_cents))}`));
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('saves an edit as a new version, listing the old one as retired, and retires a plan after a confirmation', async () => {
    const { page, problems, close } = await openAdmin();
    try {
      const panel = page.getByRole('region', { name: 'Plans', exact: true });
      await panel.getByRole('button', { name: 'Edit Web PAYG as a new version' }).click();
      const form = panel.getByRole('form', { name: 'New version of Web PAYG' });
      assert.equal(await form.getByLabel('Cents per minute').inputValue(), '3.5');
      await form.getByLabel('Cents per minute').fill('4');
      await form.getByRole('button', { name: 'Save as a new version' }).click();
      await panel.getByRole('status').getByText('Saved Web PAYG as version 2 of web_payg; version 1 is retired.').waitFor();
      assert.deepEqual(await versions('web_payg'), [[2, 'active'], [1, 'retired']]);
      const plans = (await adminGet('/admin/plans')).plans as Json[];
      const [v2, v1] = [plans.find((p) => p.key === 'web_payg' && p.version === 2)!, plans.find((p) => p.key === 'web_payg' && p.version === 1)!];
      assert.deepEqual([v2.tiers[0].cents_per_minute, v2.name, v2.max_cap_cents, v1.tiers[0].cents_per_minute], [4, 'Web PAYG', 20_000, 3.5],
        'only the rate changed');
      const v1Row = panel.getByRole('row', { name: /web_payg v1/ });
      assert.match(await v1Row.innerText(), /Retired/);
      assert.equal(await v1Row.getByRole('button').count(), 0, 'a retired version is neither edited nor retired');
      assert.match(await panel.getByRole('row', { name: /web_payg v2/ }).innerText(), /Offered/);
      await screenshot(page, 'admin-plan-new-version');

      // A subscription's new version with a new name only: its fee, minutes, caps and rate are carried over.
      await panel.getByRole('button', { name: 'Edit Web Team as a new version' }).click();
      const team = panel.getByRole('form', { name: 'New version of Web Team' });
      assert.equal(await team.getByLabel('Included minutes a month').inputValue(), '600');
      await team.getByLabel('Name').fill('Web Team Plus');
      await team.getByRole('button', { name: 'Save as a new version' }).click();
      await panel.getByRole('status').getByText('Saved Web Team Plus as version 2 of web_team; version 1 is retired.').waitFor();
      const teams = ((await adminGet('/admin/plans')).plans as Json[]).filter((p) => p.key === 'web_team');
      const shape = (p: Json) => [p.currency, p.monthly_fee_cents, p.included_seconds, p.default_cap_cents, p.max_cap_cents, p.tiers.map((t: Json) => t.cents_per_minute)];
      assert.deepEqual(teams.map((p) => [p.version, p.name, p.status]), [[2, 'Web Team Plus', 'active'], [1, 'Web Team', 'retired']]);
      assert.deepEqual(shape(teams[0]!), shape(teams[1]!));

      await panel.getByRole('button', { name: 'Retire Web Volume' }).click();
      const confirm = panel.getByRole('group', { name: 'Retire Web Volume?' });
      await confirm.getByText(/its key is never used again/).waitFor();
      assert.equal(await page.evaluate('document.activeElement?.id'), 'retire-plan-title', 'the keyboard moves to the question');
      assert.deepEqual(await versions('web_volume'), [[1, 'active']], 'nothing retired before the confirmation');
      await assertAccessible(page, 'the plans asking to confirm a retirement');
      await confirm.getByRole('button', { name: 'Yes, retire' }).click();
      await panel.getByRole('status').getByText(/^Retired Web Volume \(web_volume\)/).waitFor();
      assert.deepEqual(await versions('web_volume'), [[1, 'retired']]);
      assert.match(await panel.getByRole('row', { name: /web_volume v1/ }).innerText(), /Retired/);
      const offer = (await (await sidecar.request('GET', '/api/plans')).json()) as Json;
      assert.ok(!offer.plans.some((p: Json) => p.key === 'web_volume') && offer.plans.some((p: Json) => p.key === 'web_payg' && p.version === 2));
      assertClean(problems);
    } finally {
      await close();
    }
  });

  it('shows seeded subscribers, MRR, usage by plan and agent, outstanding and failed invoices and meter drift as the API answers them', async () => {
    const sql = db.sql;
    const day = 86_400_000;
    const iso = (ms: number) => new Date(ms).toISOString();
    const now = Date.now();
    const period = { start: iso(now - 10 * day), end: iso(now + 20 * day) };
    const [subscriber, payer, suspended] = [newUserId(), newUserId(), newUserId()];
    const pro = await planId(sql, 'pro_monthly');
    const payg = await planId(sql, 'payg');
    await subscribe(sql, { userId: subscriber, planId: pro, ...period, capCents: 7500 });
    await subscribe(sql, { userId: suspended, planId: pro, ...period, status: 'suspended' });
    const paygPlan = await subscribe(sql, { userId: payer, planId: payg, ...period });
    const call = await endedCall(sql, { userId: payer, at: iso(now - day), billedSeconds: 120, agentName: 'juana' });
    await charge(sql, { userId: payer, userPlanId: paygPlan, planId: payg, sessionId: call, periodStart: period.start,
      at: iso(now - day + 120_000), ratedSeconds: 120, amountExact: '10', billedBefore: 0 });
    const invoice = (id: string, user: string, failed: boolean, due: number) => sql.query(
      `insert into public.stripe_invoices (invoice_id, user_id, status, payment_failed, currency, total_cents, amount_due_cents,
         amount_paid_cents, hosted_invoice_url, period_start, period_end, created_at, updated_at)
       values ($1, $2, 'open', $3, 'usd', $4, $4, 0, 'https://invoice.stripe.com/i/' || $1, $5, $6, $6, $6)`,
      [id, user, failed, due, iso(now - 40 * day), iso(now - 10 * day)]);
    await invoice('in_web_open', subscriber, false, 4900);
    await invoice('in_web_failed', suspended, true, 4900);
    await sql.query(
      `insert into public.meter_drift (user_plan_id, period_start, period_end, our_seconds, stripe_seconds, checked_at)
       values ($1, $2, $3, 180, 120, $3), ($1, $4, $2, 60, 0, $2)`, [paygPlan, iso(now - 40 * day), iso(now - 10 * day), iso(now - 70 * day)]);
    await sql.query(`update public.meter_drift set resolved_at = $1 where our_seconds = 60`, [iso(now - 39 * day)]);

    const subscribers = await adminGet('/admin/plans/subscribers?limit=100');
    const mrr = await adminGet('/admin/mrr');
    const byPlan = await adminGet('/admin/usage/by-plan?days=30');
    const byAgent = await adminGet('/admin/usage/by-agent?days=30');
    const usd = mrr.currencies.find((c: Json) => c.currency === 'usd');
    assert.deepEqual([subscribers.total, usd.subscriptions], [3, 1]);

    const { page, problems, close } = await openAdmin();
    try {
      const subs = page.getByRole('region', { name: 'Subscribers', exact: true });
      const row = subs.getByRole('table', { name: 'Subscribers', exact: true }).getByRole('row', { name: new RegExp(subscriber) });
      await row.waitFor();
      const text = await row.innerText();
      assert.ok(text.includes('pro_monthly v1') && text.includes('Active') && text.includes(await money(page, 7500)), text);
      assert.match(await subs.getByRole('row', { name: new RegExp(suspended) }).innerText(), /Suspended/);
      assert.equal(await subs.getByRole('table', { name: 'Subscribers', exact: true }).locator('tbody tr').count(), subscribers.subscribers.length);

      const figures = page.getByRole('region', { name: 'MRR, by plan and by agent' });
      const mrrRow = figures.getByRole('table', { name: /Monthly recurring revenue/ }).getByRole('row', { name: /USD/ });
      await mrrRow.waitFor();
      assert.deepEqual(await mrrRow.getByRole('cell').allTextContents(), [String(usd.subscriptions), await money(page, usd.subscription_fees_cents),
        String(usd.usage_users), await money(page, usd.usage_last_period_cents), await money(page, usd.mrr_cents)]);
      const paygUsage = byPlan.plans.find((p: Json) => p.plan_key === 'payg');
      const planRow = figures.getByRole('table', { name: /Usage by plan/ }).getByRole('row', { name: /payg v1/ });
      assert.deepEqual((await planRow.getByRole('cell').allTextContents()).slice(1, 3), [String(paygUsage.users), String(paygUsage.calls)]);
      assert.equal((await planRow.getByRole('cell').allTextContents()).at(-1), await money(page, paygUsage.amount_cents));
      const juana = byAgent.agents.find((a: Json) => a.agent_name === 'juana');
      assert.match(await figures.getByRole('table', { name: /Usage by agent/ }).getByRole('row', { name: /juana/ }).innerText(),
        new RegExp(`^juana\\s+${juana.calls}\\s+${juana.users}`));

      const invoices = page.getByRole('region', { name: 'Invoices', exact: true });
      const table = invoices.getByRole('table', { name: 'Invoices', exact: true });
      await table.getByRole('row', { name: /in_web_open/ }).waitFor();
      const link = table.getByRole('link', { name: 'Open invoice in_web_failed' });
      assert.equal(await link.getAttribute('href'), 'https://invoice.stripe.com/i/in_web_failed');
      assert.match(await table.getByRole('row', { name: /in_web_failed/ }).innerText(), /Payment failed/);
      await invoices.getByLabel('Show').selectOption('failed');
      await table.getByRole('row', { name: /in_web_open/ }).waitFor({ state: 'detached' });
      assert.equal(await table.locator('tbody tr').count(), 1);

      const drift = page.getByRole('region', { name: 'Meter drift' });
      await drift.getByRole('status').getByText('1 period(s) where Stripe’s meter and our seconds differ.').waitFor();
      const driftRow = drift.getByRole('row', { name: new RegExp(payer) });
      assert.deepEqual((await driftRow.getByRole('cell').allTextContents()).slice(2, 5), ['180', '120', '+60']);
      assert.equal(await drift.locator('tbody tr').count(), 1, 'the resolved row only on request');
      await drift.getByLabel('Show resolved rows too').check();
      await drift.locator('tbody tr').nth(1).waitFor();
      const all = await adminGet('/admin/meter-drift?include_resolved=true');
      assert.equal(all.drift.length, 2);
      assert.deepEqual(await drift.locator('tbody tr').evaluateAll((rows) => rows.map((r) =>
        (r as unknown as { textContent: string }).textContent.includes('Open'))), all.drift.map((d: Json) => d.resolved_at === null));

      const books = await adminGet('/admin/books');
      const booksRegion = page.getByRole('region', { name: 'Books' });
      await booksRegion.getByText(books.postpaid.ok ? 'The postpaid books balance.' : 'The postpaid books do not balance.').waitFor();
      assert.match(await booksRegion.getByRole('table', { name: 'Postpaid plans' }).getByRole('row', { name: /Invoice lines/ }).innerText(),
        new RegExp(`${books.postpaid.lines.lines} line`));
      await drift.scrollIntoViewIfNeeded();
      await screenshot(page, 'admin-plan-panels');
      await assertAccessible(page, 'the admin page with its plan panels');
      assertClean(problems);
    } finally {
      await close();
    }
  });
});
