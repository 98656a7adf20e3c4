// Authentication of the sidecar's client and admin API, independent of any HTTP framework: an Authorization
// header in, a Principal (or an AuthError) out.
//
// Keys, chosen by the token's `alg` header:
//   HS256          SUPABASE_JWT_SECRET (a Supabase project's legacy secret) and/or JWT_SECRET (local tokens);
//                  with DEV_SIGN_IN on and no key configured at all, DEV_ONLY_JWT_SECRET.
//   ES256, RS256   the Supabase project's JWKS: SUPABASE_JWKS_URL, else $SUPABASE_URL/auth/v1/.well-known/jwks.json.
// Every token must carry `exp` and a uuid `sub`, and match JWT_AUDIENCE (and JWT_ISSUER when set).
import {
  createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, SignJWT,
  type FlattenedJWSInput, type JWSHeaderParameters, type JWTPayload,
} from 'jose';
import { ConfigError, type Config } from '../shared/config.ts';

/**
 * The secret used by the development sign-in when no key is configured, so the API can be tried locally with
 * `token-cli.ts`. It is public (it is in this file): accepted only with DEV_SIGN_IN on (which `./launch.sh dev`
 * alone turns on, never in production) and no real key (SUPABASE_JWT_SECRET, JWT_SECRET, SUPABASE_JWKS_URL,
 * SUPABASE_URL) configured.
 */
export const DEV_ONLY_JWT_SECRET = 'mindbot-dev-only-insecure-jwt-secret-never-use-in-production';

export const CLOCK_TOLERANCE_SECONDS = 30;
export const DEFAULT_AUDIENCE = 'authenticated';
const MAX_TOKEN_LENGTH = 8192;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256'] as const;

export function isUuid(value: unknown): boolean {
  return typeof value === 'string' && UUID.test(value);
}

/** What the verifier reads from the configuration; `config()` satisfies it. */
export type AuthConfig = Pick<Config, 'NODE_ENV'> &
  Partial<Pick<Config,
    'DEV_SIGN_IN' | 'SUPABASE_URL' | 'SUPABASE_JWT_SECRET' | 'SUPABASE_JWKS_URL' | 'JWT_SECRET' | 'JWT_ISSUER' | 'JWT_AUDIENCE' | 'ADMIN_USER_IDS'
  >>;

export interface Principal {
  /** The token's `sub`: the Supabase auth user id (lower-case uuid). */
  userId: string;
  isAdmin: boolean;
  email?: string;
  /** Every claim of the verified token. */
  claims: JWTPayload;
}

export type AuthErrorCode = 'unauthorized' | 'auth_unavailable';

/**
 * A request that cannot be authenticated. status 401 / code 'unauthorized': the token is missing, malformed,
 * expired, badly signed or has wrong claims (the message says which; it never contains the token).
 * status 503 / code 'auth_unavailable': the token could not be checked because the JWKS could not be fetched.
 */
export class AuthError extends Error {
  override name = 'AuthError';
  readonly status: 401 | 503;
  readonly code: AuthErrorCode;

  constructor(message: string, options: { status?: 401 | 503; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status ?? 401;
    this.code = this.status === 503 ? 'auth_unavailable' : 'unauthorized';
  }
}

export interface TokenVerifier {
  /** The principal of an `Authorization: Bearer <token>` header; rejects with AuthError. */
  verify(authorizationHeader: string | undefined): Promise<Principal>;
  /** Where keys come from, for a startup log line (names and URLs only, never secrets). */
  readonly keySources: readonly string[];
  /** True when the public DEV_ONLY_JWT_SECRET is accepted: worth a warning at startup. */
  readonly usesDevSecret: boolean;
}

export interface TokenVerifierOptions {
  /** JWKS fetch timeout in milliseconds (default 5000). */
  jwksTimeoutMs?: number;
}

interface NamedSecret {
  name: string;
  key: Uint8Array;
}

function hasAnyKey(config: AuthConfig): boolean {
  return Boolean(config.SUPABASE_JWT_SECRET || config.JWT_SECRET || config.SUPABASE_JWKS_URL || config.SUPABASE_URL);
}

function jwksUrl(config: AuthConfig): string | undefined {
  if (config.SUPABASE_JWKS_URL) return config.SUPABASE_JWKS_URL;
  if (config.SUPABASE_URL) return new URL('auth/v1/.well-known/jwks.json', config.SUPABASE_URL.replace(/\/*$/, '/')).toString();
  return undefined;
}

/**
 * The secret local tokens are signed with: JWT_SECRET, else (outside production, with no key configured at all)
 * DEV_ONLY_JWT_SECRET. Throws ConfigError otherwise.
 */
export function localSigningSecret(config: AuthConfig): string {
  if (config.JWT_SECRET) return config.JWT_SECRET;
  if (config.NODE_ENV !== 'production' && !hasAnyKey(config)) return DEV_ONLY_JWT_SECRET;
  throw new ConfigError(
    config.NODE_ENV === 'production'
      ? 'JWT_SECRET is not set: local tokens cannot be signed in production without it'
      : 'JWT_SECRET is not set: with Supabase keys configured, the dev-only secret is not accepted, so set JWT_SECRET to sign local tokens',
  );
}

/**
 * A verifier for the configuration. Create it once (it caches the JWKS). Throws ConfigError when no
 * verification key is configured, unless the development sign-in is on (never in production).
 */
export function createTokenVerifier(config: AuthConfig, options: TokenVerifierOptions = {}): TokenVerifier {
  const encoder = new TextEncoder();
  const secrets: NamedSecret[] = [];
  if (config.SUPABASE_JWT_SECRET) secrets.push({ name: 'SUPABASE_JWT_SECRET', key: encoder.encode(config.SUPABASE_JWT_SECRET) });
  if (config.JWT_SECRET) secrets.push({ name: 'JWT_SECRET', key: encoder.encode(config.JWT_SECRET) });
  const url = jwksUrl(config);

  let usesDevSecret = false;
  if (secrets.length === 0 && url === undefined) {
    // The public secret would let anyone sign an admin token offline: only the development sign-in may use it.
    if (config.NODE_ENV === 'production' || !config.DEV_SIGN_IN) {
      throw new ConfigError(
        'no API token verification key configured: set SUPABASE_URL (or SUPABASE_JWKS_URL) for Supabase asymmetric keys, '
        + 'SUPABASE_JWT_SECRET for a Supabase HS256 secret, or JWT_SECRET for local tokens '
        + '(./launch.sh dev runs with the development sign-in and needs none)',
      );
    }
    secrets.push({ name: 'DEV_ONLY_JWT_SECRET', key: encoder.encode(DEV_ONLY_JWT_SECRET) });
    usesDevSecret = true;
  }

  const remoteKeys = url === undefined
    ? undefined
    : createRemoteJWKSet(new URL(url), { timeoutDuration: options.jwksTimeoutMs ?? 5000 });
  // A JWKS that cannot be fetched (network, timeout, non-200, not a JWKS) is not the client's fault: 503.
  const jwks = remoteKeys && (async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    try {
      return await remoteKeys(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new AuthError('token keys are unavailable (JWKS fetch failed); try again later', { status: 503, cause: error });
    }
  });
  const audience = config.JWT_AUDIENCE ?? DEFAULT_AUDIENCE;
  const issuer = config.JWT_ISSUER;
  const admins = new Set((config.ADMIN_USER_IDS ?? []).map((id) => id.toLowerCase()));
  const keySources = [
    ...secrets.map((secret) => `HS256 ${secret.name}`),
    ...(url === undefined ? [] : [`${ASYMMETRIC_ALGORITHMS.join('/')} JWKS ${url}`]),
  ];

  const claimChecks = {
    audience,
    ...(issuer === undefined ? {} : { issuer }),
    requiredClaims: ['exp', 'sub'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
  };

  async function verifyToken(token: string): Promise<JWTPayload> {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new AuthError('malformed bearer token');
    }
    if (alg === 'HS256') {
      if (secrets.length === 0) throw new AuthError('HS256 tokens are not accepted: no shared secret is configured');
      let lastError: unknown;
      for (const secret of secrets) {
        try {
          return (await jwtVerify(token, secret.key, { ...claimChecks, algorithms: ['HS256'] })).payload;
        } catch (error) {
          // Claims are only checked once a signature matched: anything but a bad signature is final.
          if (!(error instanceof errors.JWSSignatureVerificationFailed)) throw error;
          lastError = error;
        }
      }
      throw lastError;
    }
    if (typeof alg === 'string' && (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
      if (jwks === undefined) throw new AuthError(`${alg} tokens are not accepted: no JWKS is configured (SUPABASE_URL or SUPABASE_JWKS_URL)`);
      return (await jwtVerify(token, jwks, { ...claimChecks, algorithms: [...ASYMMETRIC_ALGORITHMS] })).payload;
    }
    throw new AuthError(`token algorithm ${typeof alg === 'string' ? JSON.stringify(alg.slice(0, 20)) : '(missing)'} is not accepted`);
  }

  return {
    keySources,
    usesDevSecret,
    async verify(authorizationHeader) {
      const token = bearerToken(authorizationHeader);
      let claims: JWTPayload;
      try {
        claims = await verifyToken(token);
      } catch (error) {
        throw toAuthError(error);
      }
      if (typeof claims.sub !== 'string' || !isUuid(claims.sub)) throw new AuthError('token subject ("sub") is not a user uuid');
      const userId = claims.sub.toLowerCase();
      const principal: Principal = { userId, isAdmin: admins.has(userId) || hasAdminRoleClaim(claims), claims };
      if (typeof claims.email === 'string' && claims.email !== '') principal.email = claims.email;
      return principal;
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive). */
export function bearerToken(authorizationHeader: string | undefined): string {
  const header = authorizationHeader?.trim();
  if (!header) throw new AuthError('missing Authorization header (expected "Bearer <access token>")');
  const match = /^(\S+)(?:\s+(\S*))?$/.exec(header);
  if (!match || match[1]!.toLowerCase() !== 'bearer') {
    throw new AuthError('Authorization header must use the Bearer scheme ("Bearer <access token>")');
  }
  const token = match[2];
  if (!token) throw new AuthError('missing bearer token after "Bearer"');
  if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('bearer token is too long');
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
    throw new AuthError('malformed bearer token (expected a JWT: three base64url parts separated by dots)');
  }
  return token;
}

/**
 * Admin by role claim: `app_metadata.role === 'admin'`, `app_metadata.roles` containing 'admin', or a top-level
 * `user_role === 'admin'` (a custom access-token hook). Never the top-level `role` (Supabase's Postgres role,
 * 'authenticated') nor `user_metadata`, which users can write themselves.
 */
export function hasAdminRoleClaim(claims: JWTPayload): boolean {
  if (claims.user_role === 'admin') return true;
  const appMetadata = claims.app_metadata;
  if (typeof appMetadata !== 'object' || appMetadata === null || Array.isArray(appMetadata)) return false;
  const { role, roles } = appMetadata as Record<string, unknown>;
  return role === 'admin' || (Array.isArray(roles) && roles.includes('admin'));
}

function toAuthError(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  if (error instanceof errors.JWTExpired) return new AuthError('token has expired', { cause: error });
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    const message = error.reason === 'missing'
      ? `token has no "${claim}" claim`
      : claim === 'aud' ? 'token audience ("aud") is not accepted'
      : claim === 'iss' ? 'token issuer ("iss") is not accepted'
      : claim === 'nbf' ? 'token is not valid yet ("nbf")'
      : `token claim "${claim}" is invalid`;
    return new AuthError(message, { cause: error });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return new AuthError('token signature is invalid', { cause: error });
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError('token is signed with an unknown key', { cause: error });
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new AuthError('token algorithm is not accepted', { cause: error });
  if (error instanceof errors.JOSENotSupported || error instanceof errors.JWKInvalid) {
    return new AuthError('token is signed with an unsupported key', { cause: error });
  }
  return new AuthError('invalid bearer token', { cause: error });
}

export interface LocalTokenInput {
  userId: string;
  email?: string;
  /** Sets `app_metadata.role = 'admin'`. */
  admin?: boolean;
  /** Default 3600. */
  expiresInSeconds?: number;
  /** The `iss` claim; pass JWT_ISSUER when it is set, or the verifier refuses the token. */
  issuer?: string;
}

/** An HS256 token shaped like a Supabase access token (aud and role 'authenticated'), for development and tests. */
export async function signLocalToken(input: LocalTokenInput, secret: string): Promise<string> {
  if (!isUuid(input.userId)) throw new TypeError('userId must be a uuid');
  const ttl = input.expiresInSeconds ?? 3600;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new TypeError('expiresInSeconds must be a positive integer');
  const claims: JWTPayload = {
    role: 'authenticated',
    app_metadata: input.admin ? { provider: 'local', role: 'admin' } : { provider: 'local' },
  };
  if (input.email !== undefined) claims.email = input.email;
  if (input.issuer !== undefined) claims.iss = input.issuer;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(input.userId.toLowerCase())
    .setAudience(DEFAULT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
    .sign(new TextEncoder().encode(secret));
}
