// The web app (src/web, built into WEB_DIST_DIR by `npm run build`), served by the sidecar on the same origin
// as the API, so the browser needs no CORS and a strict content security policy can say exactly which
// other origins a page may talk to: LiveKit for calls, Supabase for sign-in, nothing else.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { signLocalToken } from '../auth/verify-token.ts';
import type * as Api from '../shared/api-contracts.ts';
import { HttpError, parseInput } from './http-errors.ts';

export type WebAuth =
  | { mode: 'supabase'; supabaseUrl: string; anonKey: string }
  /**
   * The development sign-in (DEV_SIGN_IN): anyone may take any user id (and admin), so it answers only requests
   * made on this machine (see isLocalRequest) and is never on in production or next to Supabase keys.
   */
  | { mode: 'local'; signingSecret: string }
  /** Production without Supabase Auth configured: the app says sign-in is unavailable, and why. */
  | { mode: 'none'; reason: string };

export interface WebAppSettings {
  distDir: string;
  auth: WebAuth;
  /** wss:// URL of the LiveKit server, when calls are configured. */
  livekitUrl?: string | undefined;
  purchasesEnabled: boolean;
  version: string;
}

/** The pages of the single-page app; every other path is the API's. */
export const WEB_PAGES = ['/', '/admin', '/purchase/success', '/purchase/cancel'] as const;

const DEV_TOKEN_TTL_SECONDS = 8 * 3600;
const DevSignInBody = z.strictObject({
  user_id: z.guid({ message: 'a user id must be a uuid' }).transform((id) => id.toLowerCase()).optional(),
  admin: z.boolean().optional(),
});

const LOOPBACK_HOSTNAME = /^(localhost|[\w-]+(\.[\w-]+)*\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * A request made on this machine: from a loopback address, not relayed (a local tunnel or reverse proxy,
 * e.g. ngrok, connects from loopback on behalf of anyone and says so in its forwarding headers), and for a
 * loopback host name (a web page elsewhere cannot rebind its own domain onto 127.0.0.1 and ask).
 */
export function isLocalRequest(request: FastifyRequest): boolean {
  const address = request.socket.remoteAddress ?? '';
  const loopback = /^(127\.|::1$|::ffff:127\.)/.test(address);
  const relayed = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip'].some((name) => request.headers[name] !== undefined);
  const hostname = (request.headers.host ?? '').replace(/:\d+$/, '');
  return loopback && !relayed && LOOPBACK_HOSTNAME.test(hostname);
}

/** An origin and, for ws(s)/http(s), its twin: livekit-client talks HTTPS and WSS to the same host. */
function originsOf(url: string | undefined): string[] {
  if (!url) return [];
  const u = new URL(url);
  const twin: Record<string, string> = { 'wss:': 'https:', 'ws:': 'http:', 'https:': 'wss:', 'http:': 'ws:' };
  const other = twin[u.protocol];
  return [`${u.protocol}//${u.host}`, ...(other ? [`${other}//${u.host}`] : [])];
}

export function contentSecurityPolicy(settings: Pick<WebAppSettings, 'auth' | 'livekitUrl'>): string {
  const connect = ["'self'", ...originsOf(settings.livekitUrl),
    ...(settings.auth.mode === 'supabase' ? originsOf(settings.auth.supabaseUrl) : [])];
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "media-src 'self' blob: mediastream:",
    `connect-src ${connect.join(' ')}`,
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(reply: FastifyReply, csp: string): FastifyReply {
  return reply
    .header('content-security-policy', csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'strict-origin-when-cross-origin')
    .header('x-frame-options', 'DENY')
    .header('permissions-policy', 'camera=(), geolocation=(), microphone=(self)');
}

export async function registerWebApp(app: FastifyInstance, settings: WebAppSettings): Promise<void> {
  const distDir = resolve(settings.distDir);
  const csp = contentSecurityPolicy(settings);
  const indexPath = join(distDir, 'index.html');

  // What the browser needs to know to start: public values only (the anon key is public by design).
  app.get('/app/config', async (_request, reply): Promise<Api.AppConfigResponse> => {
    reply.header('cache-control', 'no-store');
    return {
      auth: settings.auth.mode === 'supabase'
        ? { mode: 'supabase', supabase_url: settings.auth.supabaseUrl, supabase_anon_key: settings.auth.anonKey }
        : settings.auth.mode === 'local' ? { mode: 'local' } : { mode: 'none', reason: settings.auth.reason },
      calls: { enabled: Boolean(settings.livekitUrl), livekit_url: settings.livekitUrl ?? null },
      purchases: { enabled: settings.purchasesEnabled },
      version: settings.version,
    };
  });

  app.post('/auth/dev-sign-in', async (request): Promise<Api.DevSignInResponse> => {
    if (settings.auth.mode !== 'local') {
      throw new HttpError(404, 'not_found', 'the development sign-in is off: sign in with Supabase');
    }
    if (!isLocalRequest(request)) {
      throw new HttpError(403, 'forbidden', 'the development sign-in answers only requests from this machine (loopback)');
    }
    const body = parseInput(DevSignInBody, request.body ?? {});
    const userId = body.user_id ?? randomUUID();
    const admin = body.admin ?? false;
    const accessToken = await signLocalToken({ userId, admin, expiresInSeconds: DEV_TOKEN_TTL_SECONDS }, settings.auth.signingSecret);
    request.log.warn({ userId, admin }, 'development sign-in');
    return { access_token: accessToken, token_type: 'bearer', expires_in: DEV_TOKEN_TTL_SECONDS, user_id: userId, admin };
  });

  // The page is looked for at request time, not once at start: `./launch.sh dev` starts the sidecar while the
  // first build may still be running, and a rebuild may be writing the file. Every page is the same file, kept in
  // memory and read again when it changes; while it is missing or half-written the last complete copy is served.
  if (!existsSync(indexPath)) app.log.warn({ distDir }, 'the web app is not built yet (npm run build): its pages answer 503 until it is');
  let index: Buffer | null = null;
  let indexMtime = -1;
  const currentIndex = (): Buffer | null => {
    try {
      const { mtimeMs } = statSync(indexPath);
      if (mtimeMs !== indexMtime) {
        const read = readFileSync(indexPath);
        // Vite ends every page with </html>: anything shorter is a file still being written.
        if (read.includes('</html>')) {
          index = read;
          indexMtime = mtimeMs;
        }
      }
    } catch { /* not built, or being replaced: keep the last good copy */ }
    return index;
  };
  for (const page of WEB_PAGES) {
    app.get(page, async (_request, reply) => {
      const html = currentIndex();
      if (!html) throw new HttpError(503, 'web_app_not_built', `the web app is not built: run \`npm run build\` (looked in ${distDir})`);
      securityHeaders(reply, csp).header('cache-control', 'no-cache').type('text/html; charset=utf-8');
      return reply.send(html);
    });
  }
  await app.register(fastifyStatic, {
    root: join(distDir, 'assets'),
    prefix: '/assets/',
    wildcard: true,
    index: false,
    // Not built yet is said once above; the assets are looked up at request time like the page.
    suppressWarning: true,
    // Vite names every asset by its content hash: a name never changes its bytes.
    immutable: true,
    maxAge: '365d',
    setHeaders: (reply) => {
      reply.header('x-content-type-options', 'nosniff');
    },
  });
}
