// The web app in headless Chromium against the real sidecar: it loads under its content security policy and
// the development sign-in works.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { createPostgresDatabase, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import { assertAccessible, auditAccessibility, ensureWebBuilt, launchBrowser, openPage, screenshot, signInLocally } from './helpers/browser.ts';

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

  it('the accessibility audit runs under the page\'s CSP and names what it finds', async () => {
    const { page, problems, close } = await openPage(browser);
    try {
      await page.goto(`${sidecar.url}/`);
      await page.getByRole('heading', { name: 'Development sign-in' }).waitFor();
      assert.deepEqual(await auditAccessibility(page), []);
      // Two faults put in on purpose: a button without a name, and grey text on white far below the fold.
      // (Styled through the CSSOM: the policy refuses style attributes in markup.)
      await page.evaluate(`(() => {
        document.querySelector('main').insertAdjacentHTML('beforeend', '<button id="nameless"></button><p id="faint">faint</p>');
        Object.assign(document.getElementById('faint').style, { marginTop: '3000px', color: '#bbb', background: '#fff' });
      })()`);
      const found = await auditAccessibility(page);
      assert.equal(found.length, 2, found.join('\n'));
      assert.match(found.find((v) => v.startsWith('button-name'))!, /^button-name \(critical\): Buttons must have discernible text at #nameless: <button id="nameless"><\/button>/);
      assert.match(found.find((v) => v.startsWith('color-contrast'))!, /at #faint: .* insufficient color contrast of 1\.91/);
      assert.deepEqual(problems.cspViolations, [], 'axe ran without weakening the policy');
      assert.deepEqual(problems.consoleErrors, []);
    } finally {
      await close();
    }
  });
});
