// The talk screen in headless Chromium against the real sidecar.
//
// No LiveKit server can be reached here, so the states of a call are driven through a fake room at the
// component boundary: tests/web-harness is a test-only build of the caller page (the real CallerApp, auth,
// sidecar API and styles) in which CallRoomContext hands the talk panel a fake CallRoom that this test drives
// with page.evaluate(() => window.talkHarness...). The harness is built by Vite into a temporary directory and
// served by a small server here with the sidecar's own content security policy, every other path passed
// through to the real sidecar. Nothing of it is in dist/web: the production bundle has no test hook.
//
// What needs no LiveKit server runs in the real app (dist/web): the 402 at zero balance, calls unavailable,
// and the production LiveKit adapter failing to reach its server.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { callAttributes } from '../src/shared/call-protocol.ts';
import { contentSecurityPolicy } from '../src/sidecar/web-app.ts';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { LIVEKIT, startSidecar, type TestSidecar } from './helpers/sidecar.ts';
import {
  assertAccessible, ensureWebBuilt, launchBrowser, openPage, screenshot, SCREENSHOT_DIR, signInLocally, type PageProblems,
} from './helpers/browser.ts';

const HARNESS_DIR = fileURLToPath(new URL('./web-harness', import.meta.url));
const CHECKOUT_URL = 'https://checkout.stripe.com/c/pay/cs_test_talk_harness';

async function buildHarness(outDir: string): Promise<void> {
  const [{ build }, { default: react }] = await Promise.all([import('vite'), import('@vitejs/plugin-react')]);
  await build({ configFile: false, root: HARNESS_DIR, plugins: [react()], logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}

/** Serves the harness build with the sidecar's CSP; everything else goes to the sidecar as it is. */
async function serveHarness(dir: string, sidecarUrl: string): Promise<{ url: string; server: Server }> {
  const csp = contentSecurityPolicy({ auth: { mode: 'local', signingSecret: 'unused' }, livekitUrl: LIVEKIT.url });
  const types: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html; charset=utf-8' };
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    void (async () => {
      if (path === '/' || path.startsWith('/assets/')) {
        const file = join(dir, normalize(path === '/' ? 'index.html' : path).replace(/^(\.\.[/\\])+/, ''));
        response.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'content-security-policy': csp });
        response.end(await readFile(file));
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const headers = Object.fromEntries(Object.entries(request.headers).filter(([k]) => ['authorization', 'content-type', 'accept'].includes(k))) as Record<string, string>;
      const answer = await fetch(`${sidecarUrl}${request.url}`, {
        method: request.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      response.end(Buffer.from(await answer.arrayBuffer()));
    })().catch((error: unknown) => {
      response.writeHead(500);
      response.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, server };
}

/** The talk panel alone, at the page's size: easier to look at than the whole page. */
async function screenshotPanel(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.getByRole('region', { name: 'Talk to MindBot' }).screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
}

/** Calls the fake room's driver in the page (a string: the tests compile without the DOM's types). */
const harness = (page: Page, call: string) => page.evaluate(`window.talkHarness.${call}`);
const emitAttributes = (page: Page, record: Record<string, string>) =>
  harness(page, `emit(${JSON.stringify({ type: 'attributes', record })})`);
const meterAnswer = (remainingSeconds: number, meteredAt: string) =>
  callAttributes({ state: 'active', remainingSeconds, meteredAt: new Date(meteredAt), sessionId: 'a1b2c3d4-0000-4000-8000-00000000beef' });

/** The 402 the page shows on purpose is logged by Chromium as a failed resource load: that one only. */
function withoutExpected(problems: PageProblems, status: number): string[] {
  return problems.consoleErrors.filter((text) => !text.includes(`status of ${status}`));
}

async function timerText(page: Page): Promise<string> {
  return (await page.getByRole('timer', { name: 'Time left' }).textContent()) ?? '';
}

const shownSeconds = (text: string) => {
  const match = /^(\d+):(\d\d)$/.exec(text);
  assert.ok(match, `the countdown reads m:ss, not ${JSON.stringify(text)}`);
  return Number(match[1]) * 60 + Number(match[2]);
};

/**
 * The countdown shows what the meter answered, less the time since the page received it (give or take the
 * second it ticks in): asserted against the test's own clock, so a slow machine cannot make it flaky.
 */
async function assertCountdownFrom(page: Page, answeredSeconds: number, answeredAtMs: number): Promise<void> {
  const text = await timerText(page);
  const elapsed = Math.ceil((Date.now() - answeredAtMs) / 1000);
  const shown = shownSeconds(text);
  assert.ok(shown <= answeredSeconds && shown >= answeredSeconds - elapsed - 1,
    `the countdown shows ${text}: expected ${answeredSeconds} s less at most the ${elapsed} s since the answer`);
}

describe('web app: the talk screen', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  let noCalls: TestSidecar;
  let browser: Browser;
  let harnessDir: string;
  let harnessServer: Server;
  let harnessUrl: string;

  before(async () => {
    ensureWebBuilt();
    harnessDir = await mkdtemp(join(tmpdir(), 'mindbot-talk-harness-'));
    await buildHarness(harnessDir);
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { web: true });
    noCalls = await startSidecar(db, { web: true, livekit: null });
    ({ url: harnessUrl, server: harnessServer } = await serveHarness(harnessDir, sidecar.url));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => harnessServer?.close(resolve));
    await noCalls?.close();
    await sidecar?.close();
    await db?.close();
    if (harnessDir) await rm(harnessDir, { recursive: true, force: true });
  });

  async function userWithTime(): Promise<string> {
    const user = newUserId();
    await sidecar.store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:talk` });
    return user;
  }

  it('goes from the button through connecting to a call that follows the meter, shows the link, and ends cut off', async () => {
    const user = await userWithTime();
    const { page, problems, close } = await openPage(browser);
    try {
      await signInLocally(page, harnessUrl, { userId: user });
      const talk = page.getByRole('region', { name: 'Talk to MindBot' });
      const button = talk.getByRole('button', { name: 'Talk to MindBot' });
      await button.waitFor();
      await screenshot(page, 'talk-idle');
      await assertAccessible(page, 'the talk screen, idle');
      await screenshotPanel(page, 'talk-idle-panel');

      await button.click();
      await talk.getByRole('status').filter({ hasText: 'Connecting to MindBot…' }).waitFor();
      // The panel asked the real sidecar for a token and handed its answer to the room.
      const connects = await harness(page, 'connects') as Array<{ serverUrl: string; token: string }>;
      assert.equal(connects.length, 1);
      assert.equal(connects[0]?.serverUrl, LIVEKIT.url);
      assert.match(connects[0]?.token ?? '', /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
      await screenshot(page, 'talk-connecting');
      await assertAccessible(page, 'the talk screen, connecting');
      await screenshotPanel(page, 'talk-connecting-panel');

      await harness(page, 'resolveConnect()');
      await talk.getByText('Waiting for MindBot to join…').waitFor();
      await harness(page, `emit({ type: 'agent_state', state: 'speaking' })`);
      const firstAnswerAt = Date.now();
      await emitAttributes(page, meterAnswer(1800, '2026-03-01T10:00:00Z'));
      await talk.getByText('MindBot is speaking').waitFor();
      // LiveKit's BarVisualizer, in the agent's state.
      const bars = talk.getByTestId('voice-bars');
      assert.equal(await bars.locator('span').count(), 7);
      assert.match(await bars.getAttribute('class') ?? '', /lk-audio-bar-visualizer/);
      assert.equal(await bars.getAttribute('data-lk-va-state'), 'speaking');
      await assertCountdownFrom(page, 1800, firstAnswerAt);
      // What a screen reader hears: whole minutes, not the ticking clock.
      assert.match(await talk.getByRole('status').filter({ hasText: 'minutes left' }).textContent() ?? '', /^About (30|29) minutes left\.$/);
      await screenshot(page, 'talk-in-call-speaking');
      await assertAccessible(page, 'the talk screen in a call: countdown and visualizer');
      await screenshotPanel(page, 'talk-in-call-speaking-panel');

      // Between answers the browser's clock counts down...
      // (Polled from here: the app's CSP forbids the string evaluation waitForFunction would need.)
      const timer = page.getByRole('timer');
      const countedUntil = Date.now() + 15_000;
      for (;;) {
        const text = (await timer.textContent()) ?? '';
        if (/^29:[0-5]\d$/.test(text) && text !== '29:59') break;
        assert.ok(Date.now() < countedUntil, `the countdown never ticked below 29:59 (it shows ${JSON.stringify(text)})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // ...and the next answer of the meter re-anchors it, whatever the browser counted.
      const secondAnswerAt = Date.now();
      await emitAttributes(page, meterAnswer(905, '2026-03-01T10:15:00Z'));
      await assertCountdownFrom(page, 905, secondAnswerAt);
      // The agent's state follows what it does; the countdown does not move with it.
      await harness(page, `emit({ type: 'agent_state', state: 'listening' })`);
      await talk.getByText('MindBot is listening').waitFor();
      await screenshot(page, 'talk-in-call-reanchored');
      await screenshotPanel(page, 'talk-in-call-reanchored-panel');

      await emitAttributes(page, meterAnswer(45, '2026-03-01T10:29:00Z'));
      await talk.getByText('Less than a minute left: buy more time').waitFor();
      await harness(page, `emit(${JSON.stringify({ type: 'purchase_link', url: CHECKOUT_URL, packageId: 'starter_1h' })})`);
      const link = talk.getByRole('link', { name: 'Open the checkout MindBot sent (opens in a new tab)' });
      await link.waitFor();
      assert.equal(await link.getAttribute('href'), CHECKOUT_URL);
      assert.equal(await link.getAttribute('target'), '_blank');
      assert.match(await link.getAttribute('rel') ?? '', /noopener/);
      // A link that is not https is never shown.
      await harness(page, `emit({ type: 'purchase_link', url: 'javascript:alert(1)', packageId: null })`);
      assert.equal(await link.getAttribute('href'), CHECKOUT_URL);
      await screenshot(page, 'talk-purchase-link');
      await assertAccessible(page, 'the talk screen in the last minute, with the purchase link');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the talk screen in the last minute, dark scheme');
      await page.emulateMedia({ colorScheme: 'light' });
      await screenshotPanel(page, 'talk-purchase-link-panel');

      await emitAttributes(page, callAttributes({ state: 'cut_off', remainingSeconds: 0, sessionId: 'a1b2c3d4-0000-4000-8000-00000000beef' }));
      await talk.getByRole('alert').filter({ hasText: 'Your time has run out. MindBot is saying goodbye.' }).waitFor();
      assert.equal(await timerText(page), '0:00');
      const balanceRead = page.waitForRequest((r) => r.url().endsWith('/time/balance') && r.method() === 'GET');
      // The call's minutes belong in the history: the page reads its calls and usage again.
      const callsRead = page.waitForRequest((r) => r.url().includes('/time/sessions?') && r.method() === 'GET');
      const usageRead = page.waitForRequest((r) => r.url().endsWith('/api/usage/current') && r.method() === 'GET');
      await harness(page, `emit({ type: 'disconnected', reason: 'agent_left' })`);
      await talk.getByRole('heading', { name: 'Your time ran out' }).waitFor();
      await Promise.all([balanceRead, callsRead, usageRead]);
      const buyMore = talk.getByRole('link', { name: 'Buy more time' });
      assert.equal(await buyMore.getAttribute('href'), '#buy');
      await buyMore.click();
      assert.equal(new URL(page.url()).hash, '#buy');
      assert.equal(await page.locator('#buy').count(), 1);
      assert.equal(await talk.getByRole('link', { name: 'Open the checkout MindBot sent (opens in a new tab)' }).count(), 1);
      await talk.getByRole('button', { name: 'Talk again' }).waitFor();
      await screenshot(page, 'talk-cut-off');
      await assertAccessible(page, 'the talk screen after the call was cut off');
      await page.emulateMedia({ colorScheme: 'dark' });
      await assertAccessible(page, 'the talk screen after the call was cut off, dark scheme');
      await screenshotPanel(page, 'talk-cut-off-panel');

      assert.deepEqual(problems.cspViolations, []);
      assert.deepEqual(problems.consoleErrors, []);
    } finally {
      await close();
    }
  });

  it('fits a phone: the call with its last-minute warning and link, hanging up, and a failed connection with retry', async () => {
    const user = await userWithTime();
    const { page, problems, close } = await openPage(browser, { phone: true });
    try {
      await signInLocally(page, harnessUrl, { userId: user });
      const talk = page.getByRole('region', { name: 'Talk to MindBot' });
      await talk.getByRole('button', { name: 'Talk to MindBot' }).click();
      await talk.getByRole('status').filter({ hasText: 'Connecting to MindBot…' }).waitFor();
      await harness(page, 'resolveConnect()');
      await harness(page, `emit({ type: 'agent_state', state: 'thinking' })`);
      await emitAttributes(page, meterAnswer(50, '2026-03-01T10:00:00Z'));
      await harness(page, `emit(${JSON.stringify({ type: 'purchase_link', url: CHECKOUT_URL, packageId: 'starter_1h' })})`);
      await talk.getByText('MindBot is thinking…').waitFor();
      await talk.getByRole('link', { name: /Open the checkout/ }).waitFor();
      await talk.scrollIntoViewIfNeeded();
      // Nothing wider than the phone's screen.
      assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), 'no horizontal scrolling at 390 px');
      await screenshot(page, 'talk-phone-in-call');
      await assertAccessible(page, 'the talk screen in a call on a phone');
      await screenshotPanel(page, 'talk-phone-in-call-panel');

      await talk.getByRole('button', { name: 'Hang up' }).click();
      await talk.getByRole('heading', { name: 'Call ended' }).waitFor();
      await talk.getByText('You hung up.').waitFor();
      assert.equal(await harness(page, 'disconnects'), 1);
      await screenshot(page, 'talk-phone-ended');
      await assertAccessible(page, 'the talk screen after hanging up on a phone');
      await screenshotPanel(page, 'talk-phone-ended-panel');

      await talk.getByRole('button', { name: 'Talk again' }).click();
      await talk.getByRole('status').filter({ hasText: 'Connecting to MindBot…' }).waitFor();
      await harness(page, `rejectConnect('Could not connect to the call server. Check your connection and try again.')`);
      const failure = talk.getByRole('alert');
      await failure.filter({ hasText: 'Could not connect to the call server.' }).waitFor();
      await screenshot(page, 'talk-phone-failed');
      await assertAccessible(page, 'the talk screen after a failed connection on a phone');
      await screenshotPanel(page, 'talk-phone-failed-panel');
      await failure.getByRole('button', { name: 'Try again' }).click();
      await talk.getByRole('status').filter({ hasText: 'Connecting to MindBot…' }).waitFor();
      assert.equal((await harness(page, 'connects') as unknown[]).length, 3);
      // Giving up before the call started leaves the room and brings the button back.
      await talk.getByRole('button', { name: 'Cancel' }).click();
      await talk.getByRole('button', { name: 'Talk to MindBot' }).waitFor();
      assert.equal(await harness(page, 'disconnects'), 2);

      assert.deepEqual(problems.cspViolations, []);
      assert.deepEqual(problems.consoleErrors, []);
    } finally {
      await close();
    }
  });

  it('says calls are unavailable when POST /token answers 503', async () => {
    const user = await userWithTime();
    const { page, problems, close } = await openPage(browser);
    try {
      // The sidecar's own 503 (app.ts), for a server whose config said calls were on.
      await page.route('**/token', (route) => route.fulfill({ status: 503, contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'calls_unavailable', message: 'calls are not configured: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET' } }) }));
      await signInLocally(page, harnessUrl, { userId: user });
      const talk = page.getByRole('region', { name: 'Talk to MindBot' });
      await talk.getByRole('button', { name: 'Talk to MindBot' }).click();
      await talk.getByRole('status').filter({ hasText: 'Calls are not available on this server: calls are not configured' }).waitFor();
      assert.equal(await talk.getByRole('button', { name: 'Talk to MindBot' }).count(), 0);
      await screenshot(page, 'talk-unavailable-503');
      await screenshotPanel(page, 'talk-unavailable-503-panel');
      assert.deepEqual(problems.cspViolations, []);
      assert.deepEqual(withoutExpected(problems, 503), []);
    } finally {
      await close();
    }
  });

  describe('in the real app (dist/web)', () => {
    it('refuses a call at zero balance (402) and points to buying or redeeming', async () => {
      const { page, problems, close } = await openPage(browser);
      try {
        await signInLocally(page, sidecar.url, { userId: newUserId() });
        const talk = page.getByRole('region', { name: 'Talk to MindBot' });
        await talk.getByRole('button', { name: 'Talk to MindBot' }).click();
        const refusal = talk.getByRole('alert');
        await refusal.getByRole('heading', { name: 'No time left' }).waitFor();
        await refusal.getByText('You have no conversation time left. Buy a time card or redeem a code').waitFor();
        assert.equal(await refusal.getByRole('link', { name: 'Buy more time' }).getAttribute('href'), '#buy');
        assert.equal(await refusal.getByRole('link', { name: 'Redeem a code' }).getAttribute('href'), '#redeem');
        await screenshot(page, 'talk-no-balance-402');
        await assertAccessible(page, 'the talk screen refusing a call at zero balance');
        await screenshotPanel(page, 'talk-no-balance-402-panel');
        assert.deepEqual(problems.cspViolations, []);
        // The 402 of POST /token, shown on purpose above.
        assert.deepEqual(withoutExpected(problems, 402), []);
      } finally {
        await close();
      }
    });

    it('says calls are unavailable when the server has no LiveKit, without offering the button', async () => {
      const { page, problems, close } = await openPage(browser, { phone: true });
      try {
        await signInLocally(page, noCalls.url, { userId: newUserId() });
        const talk = page.getByRole('region', { name: 'Talk to MindBot' });
        await talk.getByText('Calls are not available on this server').waitFor();
        assert.equal(await talk.getByRole('button', { name: 'Talk to MindBot' }).count(), 0);
        await talk.scrollIntoViewIfNeeded();
        await screenshot(page, 'talk-phone-unavailable');
        await assertAccessible(page, 'the talk screen when calls are unavailable');
        await screenshotPanel(page, 'talk-phone-unavailable-panel');
        assert.deepEqual(problems.cspViolations, []);
        assert.deepEqual(problems.consoleErrors, []);
      } finally {
        await close();
      }
    });

    it('shows a retryable error when the LiveKit server cannot be reached (the production adapter)', async () => {
      const user = await userWithTime();
      const { page, problems, close } = await openPage(browser);
      try {
        await signInLocally(page, sidecar.url, { userId: user });
        const talk = page.getByRole('region', { name: 'Talk to MindBot' });
        await talk.getByRole('button', { name: 'Talk to MindBot' }).click();
        const failure = talk.getByRole('alert');
        await failure.filter({ hasText: 'Could not connect to the call server.' }).waitFor({ timeout: 30_000 });
        await failure.getByRole('button', { name: 'Try again' }).waitFor();
        await screenshot(page, 'talk-livekit-unreachable');
        await screenshotPanel(page, 'talk-livekit-unreachable-panel');
        // livekit-client reached for the server POST /token named, which the CSP allows and this network does
        // not resolve: those failures, and nothing else, are the page's errors.
        assert.deepEqual(problems.cspViolations, []);
        assert.ok(problems.consoleErrors.some((text) => text.startsWith(`WebSocket connection to '${LIVEKIT.url}/rtc`)), problems.consoleErrors.join('\n'));
        assert.deepEqual(problems.consoleErrors.filter((text) => !text.includes('ERR_NAME_NOT_RESOLVED')), []);
        assert.deepEqual(problems.failedRequests.filter((text) => !text.includes('//livekit.mindbot.test/')), []);
      } finally {
        await close();
      }
    });
  });
});
