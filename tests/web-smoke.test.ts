// The web app in headless Chromium against the real sidecar: it loads under its content security policy and
// the development sign-in works.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { createPostgresDatabase, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { assertAccessible, ensureWebBuilt, launchBrowser, openPage, screenshot, signInLocally } from './helpers/browser.ts';

describe('web app: loading and signing in', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  let browser: Browser;
  before(async () => {
    ensureWebBuilt();
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { web: true });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await sidecar?.close();
    await db?.close();
  });

  it('serves the pages with a content security policy and signs in locally without a violation', async () => {
    const response = await fetch(`${sidecar.url}/`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /connect-src 'self' wss:\/\/livekit\.mindbot\.test https:\/\/livekit\.mindbot\.test/);
    assert.match(csp, /frame-ancestors 'none'/);
    const { page, problems, close } = await openPage(browser);
    try {
      // The sign-in page itself, in both colour schemes.
      await page.goto(`${sidecar.url}/`);
      await page.getByRole('heading', { name: 'Development sign-in' }).waitFor();
      await assertAccessible(page, 'the development sign-in page');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the development sign-in page, dark scheme');
      await page.emulateMedia({ colorScheme: 'light' });
      await signInLocally(page, sidecar.url);
      await page.getByRole('heading', { name: 'Your MindBot time' }).waitFor();
      await screenshot(page, 'caller-signed-in');
      await assertAccessible(page, 'the caller page just signed in');
      assert.deepEqual(problems.cspViolations, []);
      assert.deepEqual(problems.consoleErrors, []);
    } finally {
      await close();
    }
  });
});
