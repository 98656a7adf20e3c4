// The production sign-in in headless Chromium: the sidecar in Supabase mode, the browser's supabase-js talking
// to a local fake of Supabase Auth (GoTrue) cross-origin, under the page's content security policy, and the
// sidecar verifying the access tokens the fake signs with the project's HS256 secret. The Supabase form (no
// development sign-in), a wrong password's message, sign-up with and without email confirmation, the balance
// of the signed-in user, a reload that stays signed in (and a refresh of an expiring session on reload), sign
// out, and /admin for an administrator by app_metadata role and for a plain user.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createPostgresDatabase, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { startFakeGoTrue, type FakeGoTrue } from './helpers/fake-gotrue.ts';
import { assertAccessible, ensureWebBuilt, launchBrowser, openPage, screenshot, type OpenedPage } from './helpers/browser.ts';

const PASSWORD = 'correct horse battery staple';

/** Chromium's console line for a fetch answered with `status`. */
const failedLoad = (status: number) =>
  new RegExp(`^Failed to load resource: the server responded with a status of ${status}\\b`);

interface Watched extends OpenedPage {
  /** Bearer tokens the page sent to the sidecar, in order. */
  sidecarTokens: string[];
  /** Console warnings (supabase-js warns there, e.g. about several clients on one storage key). */
  warnings: string[];
}

describe('web app: Supabase sign-in against a fake Supabase Auth', () => {
  let db: TestDatabase;
  let gotrue: FakeGoTrue;
  let sidecar: TestSidecar;
  let browser: Browser;
  let emailCounter = 0;
  const email = (name: string) => `${name}.${process.pid}.${emailCounter++}@mindbot.test`;

  before(async () => {
    // The tests use dist/web as built: run `npx vite build` after changing src/web.
    ensureWebBuilt();
    gotrue = await startFakeGoTrue();
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, {
      web: true, supabaseAuth: { url: gotrue.url, anonKey: gotrue.anonKey, jwtSecret: gotrue.jwtSecret },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await sidecar?.close();
    await gotrue?.close();
    await db?.close();
  });

  const open = async (): Promise<Watched> => {
    const opened = await openPage(browser);
    const watched: Watched = { ...opened, sidecarTokens: [], warnings: [] };
    opened.page.on('request', (request) => {
      if (!request.url().startsWith(`${sidecar.url}/`)) return;
      const match = /^Bearer (.+)$/.exec(request.headers().authorization ?? '');
      if (match) watched.sidecarTokens.push(match[1]!);
    });
    opened.page.on('console', (message) => {
      if (message.type() === 'warning') watched.warnings.push(message.text());
    });
    return watched;
  };

  /** No CSP violation, no warning from supabase-js, and console errors only the failed loads expected. */
  const assertClean = (opened: Watched, expectedFailedLoads: number[] = []) => {
    assert.deepEqual(opened.problems.cspViolations, []);
    assert.deepEqual(opened.warnings.filter((w) => /GoTrue|supabase/i.test(w)), []);
    const errors = [...opened.problems.consoleErrors];
    for (const status of expectedFailedLoads) {
      const index = errors.findIndex((text) => failedLoad(status).test(text));
      assert.notEqual(index, -1, `expected a failed load with status ${status} in ${JSON.stringify(opened.problems.consoleErrors)}`);
      errors.splice(index, 1);
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(opened.problems.failedRequests, []);
  };

  const signInForm = async (page: Page, path = '/') => {
    await page.goto(`${sidecar.url}${path}`);
    await page.getByRole('heading', { name: 'Sign in', level: 2 }).waitFor();
  };

  const submit = async (page: Page, address: string, password: string, button = 'Sign in') => {
    await page.getByLabel('Email').fill(address);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: button, exact: true }).click();
  };

  const balance = (page: Page) => page.getByRole('region', { name: 'Balance' });

  /** The session supabase-js keeps in localStorage (sb-<ref>-auth-token), or null. */
  const storedSession = async (page: Page) => JSON.parse(await page.evaluate(`(() => {
    const key = Object.keys(localStorage).find((k) => /^sb-.*-auth-token$/.test(k));
    return key ? localStorage.getItem(key) : 'null';
  })()`) as string) as { access_token: string; refresh_token: string; expires_at: number } | null;

  it('offers the Supabase sign-in form only, under a policy that admits the Supabase origin', async () => {
    const config = await (await fetch(`${sidecar.url}/app/config`)).json() as { auth: Record<string, string> };
    assert.deepEqual(config.auth, { mode: 'supabase', supabase_url: gotrue.url, supabase_anon_key: gotrue.anonKey });
    const csp = (await fetch(`${sidecar.url}/`)).headers.get('content-security-policy') ?? '';
    const port = new URL(gotrue.url).port;
    assert.match(csp, new RegExp(`connect-src 'self' [^;]*http://127\\.0\\.0\\.1:${port} ws://127\\.0\\.0\\.1:${port}(;|$)`));
    // The development sign-in is off in Supabase mode.
    const dev = await sidecar.request('POST', '/auth/dev-sign-in', { body: {} });
    assert.equal(dev.status, 404);

    const opened = await open();
    try {
      const { page } = opened;
      await signInForm(page);
      assert.ok(await page.getByLabel('Email').isVisible());
      assert.ok(await page.getByLabel('Password').isVisible());
      assert.equal(await page.getByRole('heading', { name: 'Development sign-in' }).count(), 0);
      assert.equal(await page.getByLabel('Sign in as an administrator').count(), 0);
      assert.equal(await page.getByText(/administrator/i).count(), 0);
      await screenshot(page, 'supabase-sign-in');
      await assertAccessible(page, 'the Supabase sign-in form');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the Supabase sign-in form, dark scheme');
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('refuses a wrong password in GoTrue’s words, then signs in and loads the user’s balance from the sidecar; a reload stays signed in; sign out', async () => {
    const address = email('caller');
    const user = gotrue.addUser({ email: address, password: PASSWORD });
    await sidecar.store.grantCard({ userId: user.id, tierId: 'starter_1h', idempotencyKey: `grant-${user.id}` });
    const opened = await open();
    try {
      const { page } = opened;
      // Set before the first page load: whether the sign-in form ever showed, also for a moment.
      await page.addInitScript(`window.__signInFormSeen = false;
        new MutationObserver(() => { if (document.getElementById('password')) window.__signInFormSeen = true; })
          .observe(document, { childList: true, subtree: true });`);
      await signInForm(page);

      await submit(page, address, 'not the password');
      await page.getByRole('alert').filter({ hasText: 'Invalid login credentials' }).waitFor();
      const refused = gotrue.calls('POST', '/auth/v1/token', 'password');
      assert.equal(refused.length, 1);
      assert.equal(refused[0]!.status, 400);
      assert.deepEqual(refused[0]!.body, { email: address, password: 'not the password', gotrue_meta_security: {} });
      // supabase-js sends the project's anon key; the preflight came from the sidecar's origin.
      assert.equal(refused[0]!.headers.apikey, gotrue.anonKey);
      assert.equal(refused[0]!.headers.origin, sidecar.url);
      const preflight = gotrue.requests.find((r) => r.method === 'OPTIONS' && r.path === '/auth/v1/token');
      assert.ok(preflight, 'the browser sent a CORS preflight');
      await screenshot(page, 'supabase-wrong-password');
      await assertAccessible(page, 'the Supabase sign-in form refusing a wrong password');

      await submit(page, address, PASSWORD);
      await page.getByRole('heading', { name: 'Your MindBot time' }).waitFor();
      await balance(page).getByText('1 h', { exact: true }).waitFor();
      assert.match(await page.getByText('Signed in as').textContent() ?? '', new RegExp(address.replace(/\./g, '\\.')));
      // The sidecar accepted the fake's token: every API call after sign-in carried exactly the token it issued.
      const session = gotrue.issued.at(-1)!;
      assert.equal(session.userId, user.id);
      assert.ok(opened.sidecarTokens.length > 0);
      assert.deepEqual([...new Set(opened.sidecarTokens)], [session.accessToken]);
      await screenshot(page, 'supabase-signed-in');
      await assertAccessible(page, 'the caller page signed in through Supabase');

      // Reload: supabase-js restores the session from localStorage, no new sign-in, and no flash of the form.
      assert.equal((await storedSession(page))?.access_token, session.accessToken);
      const passwordGrants = gotrue.calls('POST', '/auth/v1/token', 'password').length;
      // The page's own reads (usage, analytics) finish first: a reload would abort them and count as failures.
      await page.waitForLoadState('networkidle');
      await page.reload();
      await balance(page).getByText('1 h', { exact: true }).waitFor();
      assert.equal(gotrue.calls('POST', '/auth/v1/token', 'password').length, passwordGrants);
      assert.equal(await page.evaluate('window.__signInFormSeen'), false, 'the sign-in form showed while the session was restored');

      // An expiring session is refreshed on load (refresh_token grant) and the page uses the new token.
      opened.sidecarTokens.length = 0;
      await page.evaluate(`(() => {
        const key = Object.keys(localStorage).find((k) => /^sb-.*-auth-token$/.test(k));
        const stored = JSON.parse(localStorage.getItem(key));
        stored.expires_at = Math.floor(Date.now() / 1000) + 10;
        localStorage.setItem(key, JSON.stringify(stored));
      })()`);
      // The page's own reads (usage, analytics) finish first: a reload would abort them and count as failures.
      await page.waitForLoadState('networkidle');
      await page.reload();
      await balance(page).getByText('1 h', { exact: true }).waitFor();
      const refreshes = gotrue.calls('POST', '/auth/v1/token', 'refresh_token');
      assert.equal(refreshes.length, 1);
      assert.deepEqual(refreshes[0]!.body, { refresh_token: session.refreshToken });
      const refreshed = gotrue.issued.at(-1)!;
      assert.equal(refreshed.grant, 'refresh_token');
      assert.deepEqual([...new Set(opened.sidecarTokens)], [refreshed.accessToken]);

      // Sign out: GoTrue is told (with the current token), the stored session is gone, the form is back.
      // The page's own reads (usage, analytics) finish first: a reload would abort them and count as failures.
      await page.waitForLoadState('networkidle');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in', level: 2 }).waitFor();
      const logout = gotrue.calls('POST', '/auth/v1/logout');
      assert.equal(logout.length, 1);
      assert.equal(logout[0]!.headers.authorization, `Bearer ${refreshed.accessToken}`);
      assert.equal(logout[0]!.status, 204);
      assert.equal(await storedSession(page), null);
      await page.reload();
      await page.getByRole('heading', { name: 'Sign in', level: 2 }).waitFor();
      assert.equal(await page.getByRole('heading', { name: 'Your MindBot time' }).count(), 0);

      // The only console error is the deliberate wrong password: Chromium logs the 400 of POST /token.
      assertClean(opened, [400]);
    } finally {
      await opened.close();
    }
  });

  it('signs up a new account (email confirmation off): signed in at once, the balance is the new user’s', async () => {
    const address = email('new');
    const opened = await open();
    try {
      const { page } = opened;
      await signInForm(page);
      await page.getByRole('button', { name: 'Create an account' }).click();
      await page.getByRole('heading', { name: 'Create an account', level: 2 }).waitFor();
      await submit(page, address, PASSWORD, 'Create account');
      await page.getByRole('heading', { name: 'Your MindBot time' }).waitFor();
      await balance(page).getByText('No time left').waitFor();
      const user = gotrue.user(address);
      assert.ok(user, 'the fake has the new user');
      const signups = gotrue.calls('POST', '/auth/v1/signup');
      assert.equal(signups.length, 1);
      assert.equal(signups[0]!.headers.apikey, gotrue.anonKey);
      assert.deepEqual(opened.sidecarTokens.filter((t) => t !== gotrue.issued.at(-1)!.accessToken), []);

      await sidecar.store.grantCard({ userId: user.id, tierId: 'starter_1h', idempotencyKey: `grant-${user.id}` });
      await balance(page).getByRole('button', { name: 'Refresh' }).click();
      await balance(page).getByText('1 h', { exact: true }).waitFor();
      assertClean(opened);
    } finally {
      await opened.close();
    }
  });

  it('signs up with email confirmation on: the page says to check the email; once confirmed, the user signs in', async () => {
    const address = email('confirm');
    gotrue.autoConfirm = false;
    const opened = await open();
    try {
      const { page } = opened;
      await signInForm(page);
      await page.getByRole('button', { name: 'Create an account' }).click();
      await submit(page, address, PASSWORD, 'Create account');
      await page.getByRole('status').filter({ hasText: 'Check your email to confirm your account, then sign in.' }).waitFor();
      assert.equal(await page.getByRole('heading', { name: 'Your MindBot time' }).count(), 0);
      assert.equal(await storedSession(page), null);

      const user = gotrue.user(address)!;
      user.email_confirmed_at = new Date().toISOString();
      await page.getByRole('button', { name: 'I already have an account' }).click();
      await submit(page, address, PASSWORD);
      await page.getByRole('heading', { name: 'Your MindBot time' }).waitFor();
      await balance(page).getByText('No time left').waitFor();
      assertClean(opened);
    } finally {
      gotrue.autoConfirm = true;
      await opened.close();
    }
  });

  it('/admin: an administrator by app_metadata role sees the numbers; a plain user is refused', async () => {
    const adminAddress = email('admin');
    gotrue.addUser({ email: adminAddress, password: PASSWORD, appMetadata: { role: 'admin' } });
    const admin = await open();
    try {
      await signInForm(admin.page, '/admin');
      await submit(admin.page, adminAddress, PASSWORD);
      await admin.page.getByRole('heading', { name: 'MindBot administration', level: 1 }).waitFor();
      await admin.page.getByRole('heading', { name: 'Revenue', level: 2 }).waitFor();
      assertClean(admin);
    } finally {
      await admin.close();
    }

    const plainAddress = email('plain');
    gotrue.addUser({ email: plainAddress, password: PASSWORD, appMetadata: { role: 'caller' } });
    const plain = await open();
    try {
      await signInForm(plain.page, '/admin');
      await submit(plain.page, plainAddress, PASSWORD);
      await plain.page.getByRole('heading', { name: 'Administrators only', level: 1 }).waitFor();
      assert.match(await plain.page.getByText('You are signed in as').textContent() ?? '', new RegExp(plainAddress.replace(/\./g, '\\.')));
      assert.equal(await plain.page.getByRole('heading', { name: 'Revenue' }).count(), 0);
      // The admin API's refusal (403) is what the page shows, and the one console error.
      assertClean(plain, [403]);
    } finally {
      await plain.close();
    }
  });
});
