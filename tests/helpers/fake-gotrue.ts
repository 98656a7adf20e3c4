// A local fake of Supabase Auth (GoTrue) at its HTTP boundary, for the web app's production sign-in in a
// browser with no Supabase reachable. It speaks what @supabase/auth-js 2 (GoTrueClient) sends for email and
// password accounts, under <url>/auth/v1:
//   POST /signup                          new account: a session when email confirmation is off (autoConfirm),
//                                         else the bare user (the app then says "check your email")
//   POST /token?grant_type=password       sign in; a wrong password is 400 invalid_credentials
//   POST /token?grant_type=refresh_token  a new session for a refresh token (rotated: each is used once)
//   GET  /user                            the user of the bearer access token
//   POST /logout?scope=global|local|others  revokes refresh tokens; 204
//   GET  /.well-known/jwks.json           no asymmetric keys (a project on the legacy HS256 secret)
// Every request must carry the project's anon key as `apikey` (Supabase's gateway refuses it otherwise).
// Access tokens are HS256 JWTs signed with the given secret, with the claims Supabase puts in them. Errors use
// GoTrue's current shape, {code, error_code, msg}, with the X-Supabase-Api-Version header auth-js reads.
// The browser calls it cross-origin (from the sidecar's origin), so it answers CORS preflights as Supabase's
// gateway does: any origin, the requested headers. Every request is recorded for assertions.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify, SignJWT } from 'jose';

export interface FakeGoTrueUser {
  id: string;
  email: string;
  password: string;
  app_metadata: Record<string, unknown>;
  user_metadata: Record<string, unknown>;
  created_at: string;
  /** Null until the email is confirmed (at once with autoConfirm). */
  email_confirmed_at: string | null;
}

export interface RecordedGoTrueRequest {
  method: string;
  /** The path under the server, e.g. /auth/v1/token. */
  path: string;
  query: Record<string, string>;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: unknown;
  status: number;
}

export interface FakeGoTrue {
  /** The Supabase project URL (what SUPABASE_URL would be): http://127.0.0.1:<port>. */
  url: string;
  anonKey: string;
  jwtSecret: string;
  /** Signup answers with a session (email confirmation off); false: the user must confirm first. */
  autoConfirm: boolean;
  /** Lifetime of the access tokens issued from now on. */
  accessTokenSeconds: number;
  readonly requests: RecordedGoTrueRequest[];
  /** Every access token issued, in order, with its user. */
  readonly issued: { userId: string; accessToken: string; refreshToken: string; grant: string }[];
  /** Users by email (lower case). */
  readonly users: Map<string, FakeGoTrueUser>;
  addUser(input: { email: string; password: string; appMetadata?: Record<string, unknown>; confirmed?: boolean }): FakeGoTrueUser;
  user(email: string): FakeGoTrueUser | undefined;
  /** Requests to one endpoint, e.g. ('POST', '/auth/v1/token', 'password'). */
  calls(method: string, path: string, grantType?: string): RecordedGoTrueRequest[];
  close(): Promise<void>;
}

class GoTrueError extends Error {
  constructor(readonly status: number, readonly errorCode: string, message: string) {
    super(message);
  }
}

const API_VERSION = '2024-01-01';

export async function startFakeGoTrue(options: { jwtSecret?: string; anonKey?: string; autoConfirm?: boolean } = {}): Promise<FakeGoTrue> {
  const jwtSecret = options.jwtSecret ?? `fake-gotrue-jwt-secret-${randomBytes(16).toString('hex')}`;
  const secretKey = new TextEncoder().encode(jwtSecret);
  const users = new Map<string, FakeGoTrueUser>();
  const refreshTokens = new Map<string, { userId: string; sessionId: string; revoked: boolean }>();
  const requests: RecordedGoTrueRequest[] = [];
  const issued: FakeGoTrue['issued'] = [];
  let url = '';

  const publicUser = (user: FakeGoTrueUser) => ({
    id: user.id,
    aud: 'authenticated',
    role: 'authenticated',
    email: user.email,
    email_confirmed_at: user.email_confirmed_at,
    phone: '',
    confirmed_at: user.email_confirmed_at,
    ...(user.email_confirmed_at === null && { confirmation_sent_at: user.created_at }),
    last_sign_in_at: user.email_confirmed_at,
    app_metadata: user.app_metadata,
    user_metadata: user.user_metadata,
    identities: [],
    created_at: user.created_at,
    updated_at: user.created_at,
    is_anonymous: false,
  });

  const session = async (user: FakeGoTrueUser, grant: string, sessionId: string = randomUUID()) => {
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = fake.accessTokenSeconds;
    const accessToken = await new SignJWT({
      email: user.email, phone: '', app_metadata: user.app_metadata, user_metadata: user.user_metadata,
      role: 'authenticated', aal: 'aal1', amr: [{ method: grant === 'refresh_token' ? 'password' : grant, timestamp: now }],
      session_id: sessionId, is_anonymous: false,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.id)
      .setAudience('authenticated')
      .setIssuer(`${url}/auth/v1`)
      .setIssuedAt(now)
      .setExpirationTime(now + expiresIn)
      .sign(secretKey);
    const refreshToken = randomBytes(12).toString('base64url');
    refreshTokens.set(refreshToken, { userId: user.id, sessionId, revoked: false });
    issued.push({ userId: user.id, accessToken, refreshToken, grant });
    return {
      access_token: accessToken, token_type: 'bearer', expires_in: expiresIn, expires_at: now + expiresIn,
      refresh_token: refreshToken, user: publicUser(user),
    };
  };

  const userById = (id: string) => [...users.values()].find((u) => u.id === id);

  /** The user and session of `Authorization: Bearer <access token>`. */
  const bearer = async (req: IncomingMessage) => {
    const match = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) throw new GoTrueError(401, 'no_authorization', 'This endpoint requires a valid Bearer token');
    let claims;
    try {
      claims = (await jwtVerify(match[1]!, secretKey, { algorithms: ['HS256'], audience: 'authenticated' })).payload;
    } catch {
      throw new GoTrueError(403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature, token is expired');
    }
    const user = typeof claims.sub === 'string' ? userById(claims.sub) : undefined;
    if (!user) throw new GoTrueError(403, 'user_not_found', 'User from sub claim in JWT does not exist');
    return { user, sessionId: String(claims.session_id ?? '') };
  };

  const credentials = (body: unknown) => {
    const { email, password } = (body ?? {}) as { email?: unknown; password?: unknown };
    if (typeof email !== 'string' || typeof password !== 'string' || email === '' || password === '') {
      throw new GoTrueError(400, 'validation_failed', 'missing email or phone');
    }
    return { email: email.trim().toLowerCase(), password };
  };

  const handle = async (req: IncomingMessage, path: string, query: URLSearchParams, body: unknown): Promise<[number, unknown]> => {
    if (req.method === 'GET' && path === '/auth/v1/.well-known/jwks.json') return [200, { keys: [] }];
    if (req.headers.apikey !== fake.anonKey) {
      // Supabase's gateway, before GoTrue sees the request.
      return [401, { message: req.headers.apikey ? 'Invalid API key' : 'No API key found in request' }];
    }
    if (req.method === 'POST' && path === '/auth/v1/signup') {
      const { email, password } = credentials(body);
      if (password.length < 6) {
        throw new GoTrueError(422, 'weak_password', 'Password should be at least 6 characters.');
      }
      if (users.has(email)) throw new GoTrueError(422, 'user_already_exists', 'User already registered');
      const data = (body as { data?: unknown }).data;
      const user = fake.addUser({ email, password, confirmed: fake.autoConfirm });
      if (data && typeof data === 'object') user.user_metadata = { ...data };
      return [200, fake.autoConfirm ? await session(user, 'password') : publicUser(user)];
    }
    if (req.method === 'POST' && path === '/auth/v1/token') {
      const grant = query.get('grant_type');
      if (grant === 'password') {
        const { email, password } = credentials(body);
        const user = users.get(email);
        if (!user || user.password !== password) throw new GoTrueError(400, 'invalid_credentials', 'Invalid login credentials');
        if (user.email_confirmed_at === null) throw new GoTrueError(400, 'email_not_confirmed', 'Email not confirmed');
        return [200, await session(user, 'password')];
      }
      if (grant === 'refresh_token') {
        const token = (body as { refresh_token?: unknown } | null)?.refresh_token;
        const known = typeof token === 'string' ? refreshTokens.get(token) : undefined;
        if (!known) throw new GoTrueError(400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
        if (known.revoked) throw new GoTrueError(400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used');
        known.revoked = true;
        const user = userById(known.userId);
        if (!user) throw new GoTrueError(400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
        return [200, await session(user, 'refresh_token', known.sessionId)];
      }
      throw new GoTrueError(400, 'validation_failed', 'unsupported_grant_type');
    }
    if (req.method === 'GET' && path === '/auth/v1/user') {
      const { user } = await bearer(req);
      return [200, publicUser(user)];
    }
    if (req.method === 'POST' && path === '/auth/v1/logout') {
      const { user, sessionId } = await bearer(req);
      const scope = query.get('scope') ?? 'global';
      for (const entry of refreshTokens.values()) {
        if (entry.userId !== user.id) continue;
        const same = entry.sessionId === sessionId;
        if (scope === 'global' || (scope === 'local' && same) || (scope === 'others' && !same)) entry.revoked = true;
      }
      return [204, null];
    }
    return [404, { code: 404, error_code: 'not_found', msg: `no route ${req.method} ${path}` }];
  };

  const cors = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
    res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers']
      ?? 'authorization, apikey, content-type, x-client-info, x-supabase-api-version');
    res.setHeader('access-control-expose-headers', 'x-supabase-api-version');
    res.setHeader('access-control-max-age', '600');
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const parsed = new URL(req.url ?? '/', url);
        const raw = Buffer.concat(chunks).toString('utf8');
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v ?? '']));
        const record: RecordedGoTrueRequest = {
          method: req.method ?? 'GET', path: parsed.pathname, query: Object.fromEntries(parsed.searchParams),
          headers, body: null, status: 0,
        };
        requests.push(record);
        cors(req, res);
        let status: number;
        let payload: unknown;
        if (req.method === 'OPTIONS') {
          [status, payload] = [204, null];
        } else {
          try {
            record.body = raw === '' ? null : JSON.parse(raw);
            [status, payload] = await handle(req, parsed.pathname, parsed.searchParams, record.body);
          } catch (error) {
            if (error instanceof SyntaxError) [status, payload] = [400, { code: 400, error_code: 'bad_json', msg: 'Could not parse request body as JSON' }];
            else if (error instanceof GoTrueError) [status, payload] = [error.status, { code: error.status, error_code: error.errorCode, msg: error.message }];
            else [status, payload] = [500, { code: 500, error_code: 'unexpected_failure', msg: String(error) }];
          }
        }
        record.status = status;
        res.setHeader('x-supabase-api-version', API_VERSION);
        if (payload === null) {
          res.writeHead(status).end();
        } else {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeGoTrue = {
    url,
    // Shaped like a project's anon key (a JWT with role anon); only compared, never verified by anyone.
    anonKey: options.anonKey ?? await new SignJWT({ role: 'anon', ref: 'fake' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('supabase').setIssuedAt().setExpirationTime('10y').sign(secretKey),
    jwtSecret,
    autoConfirm: options.autoConfirm ?? true,
    accessTokenSeconds: 3600,
    requests,
    issued,
    users,
    addUser({ email, password, appMetadata, confirmed = true }) {
      const key = email.trim().toLowerCase();
      if (users.has(key)) throw new Error(`fake GoTrue: ${key} exists`);
      const now = new Date().toISOString();
      const user: FakeGoTrueUser = {
        id: randomUUID(), email: key, password,
        app_metadata: { provider: 'email', providers: ['email'], ...appMetadata },
        user_metadata: {}, created_at: now, email_confirmed_at: confirmed ? now : null,
      };
      users.set(key, user);
      return user;
    },
    user: (email) => users.get(email.trim().toLowerCase()),
    calls: (method, path, grantType) => requests.filter((r) => r.method === method && r.path === path
      && (grantType === undefined || r.query.grant_type === grantType)),
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    }),
  };
  return fake;
}
