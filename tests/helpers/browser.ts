// Headless Chromium for the web app's end-to-end tests: Debian's chromium driven by playwright-core through
// its executablePath (./launch.sh test installs it). Every page a test opens records console errors, failed
// requests and content-security-policy violations, so a test can assert the page ran clean.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { WEB_DIST_DIR } from './sidecar.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-artifacts/screenshots', import.meta.url));

/** Builds the web app when the tests run without `./launch.sh test` having built it. */
export function ensureWebBuilt(): void {
  if (existsSync(join(WEB_DIST_DIR, 'index.html'))) return;
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'inherit',
  });
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: run ./launch.sh test (it installs Debian's chromium) or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // This machine's network is closed: without these, Chromium keeps trying to reach Google's services.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
}

export interface PageProblems {
  consoleErrors: string[];
  cspViolations: string[];
  failedRequests: string[];
}

export interface OpenedPage {
  page: Page;
  context: BrowserContext;
  problems: PageProblems;
  close(): Promise<void>;
}

/** A fresh context (no shared storage) and page; phone: a 390×844 touch screen instead of a desktop. */
export async function openPage(browser: Browser, options: { phone?: boolean } = {}): Promise<OpenedPage> {
  const context = await browser.newContext(options.phone
    ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
    : { viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: PageProblems = { consoleErrors: [], cspViolations: [], failedRequests: [] };
  // Runs in the page (a string: the tests are compiled without the DOM's types).
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (event) => {
    console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI);
  });`);
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    (text.startsWith('CSP violation') ? problems.cspViolations : problems.consoleErrors).push(text);
  });
  page.on('pageerror', (error) => problems.consoleErrors.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`));
  return { page, context, problems, close: () => context.close() };
}

/** Saves a full-page screenshot as a test artifact: test-artifacts/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Signs in through the development sign-in form as `userId` (a new user when omitted). */
export async function signInLocally(page: Page, baseUrl: string, options: { userId?: string; admin?: boolean; path?: string } = {}): Promise<void> {
  await page.goto(`${baseUrl}${options.path ?? '/'}`);
  await page.getByRole('heading', { name: 'Development sign-in' }).waitFor();
  if (options.userId) await page.getByLabel('User id (leave empty for a new user)').fill(options.userId);
  const adminBox = page.getByLabel('Sign in as an administrator');
  if (options.admin) await adminBox.check(); else await adminBox.uncheck();
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// axe-core's browser bundle, read once and injected into a page when first audited there.
let axeSource: string | undefined;
const AXE_PATH = fileURLToPath(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url));

export interface AuditOptions {
  /** A CSS selector: audit only that part of the page (the whole document by default). */
  include?: string;
  /** Also run axe's best-practice rules (landmarks, heading order, one main…). Default true. */
  bestPractice?: boolean;
}

/**
 * Runs axe-core in the page against WCAG 2.0/2.1 A and AA (and axe's best practices) and returns the
 * violations, one line per failing element: the rule, its impact, what it asks, where (the element's
 * selector), the element's HTML and axe's summary of what to fix. `assert.deepEqual(await
 * auditAccessibility(page), [])` therefore fails with a message that says what to fix.
 *
 * The source goes in through page.evaluate, which runs through the DevTools protocol: the page's content
 * security policy (script-src 'self', no 'unsafe-eval') does not apply to it, so the policy stays as it is
 * served (openPage records any CSP violation, and the tests assert there is none).
 */
export async function auditAccessibility(page: Page, options: AuditOptions = {}): Promise<string[]> {
  axeSource ??= readFileSync(AXE_PATH, 'utf8');
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(axeSource);
  const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', ...(options.bestPractice === false ? [] : ['best-practice'])];
  type Violation = { id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[]; html: string; failureSummary?: string }> };
  const violations = await page.evaluate(async ({ tags, include }) => {
    // Runs in the page (the tests compile without the DOM's types).
    const w = globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: Violation[] }> }; document: unknown };
    const result = await w.axe.run(include ? { include: [include] } : w.document, {
      runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, failureSummary: n.failureSummary })) }));
  }, { tags, include: options.include ?? null });
  const short = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
  return violations.flatMap((v) => v.nodes.map((n) =>
    `${v.id} (${v.impact ?? 'unknown'}): ${v.help} at ${n.target.map(String).join(' ')}: ${short(n.html.replace(/\s+/g, ' '), 200)}`
    + (n.failureSummary ? ` — ${n.failureSummary.replace(/\s*\n\s*/g, ' ')}` : '')));
}

/** Fails, naming each violation, unless axe finds none; `state` says which screen was audited. */
export async function assertAccessible(page: Page, state: string, options: AuditOptions = {}): Promise<void> {
  const violations = await auditAccessibility(page, options);
  assert.deepEqual(violations, [], `accessibility of ${state}:\n${violations.join('\n')}`);
}
