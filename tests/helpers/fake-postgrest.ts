import type { SqlClient } from '../../src/billing/sql-client.ts';
import { asRole } from './test-db.ts';

// A small emulation of Supabase's Data API for RPC calls (POST /rest/v1/rpc/<fn>), served from a real test
// database through a fetch function that supabase-js takes as `global.fetch`. It does what the real stack
// does to a call, in the same order:
//   1. the gateway (Kong) refuses a request without a known project API key in the `apikey` header;
//   2. PostgREST reads the role and the claims from the bearer JWT (no Authorization: the anon role; this
//      fake does not verify signatures, but it honours `exp`), finds the function in the schema cache by
//      its name and the set of argument names (PGRST202 when nothing matches), and runs it in one
//      transaction as that role with request.jwt.claims set (read-only for a STABLE/IMMUTABLE function);
//   3. the answer is the bare JSON value with 200, or the error as {code, message, details, hint} with
//      PostgREST's status mapping (P0001 → 400, 42501 → 401 for anon / 403 otherwise, a lost database →
//      503 PGRST000, …).
// Sources: PostgREST src/library/PostgREST/{Plan.hs (findProc), Error.hs (mapSQLtoHTTP),
// SchemaCache.hs (funcsSqlQuery)} and docs/references/errors.rst. Every request is recorded for assertions.

export type ApiRole = 'anon' | 'authenticated' | 'service_role';

export interface RecordedRequest {
  method: string;
  url: string;
  path: string;
  /** The function named by the path, or null when the path is not /rest/v1/rpc/<fn>. */
  fn: string | null;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The parsed JSON body (undefined when empty or not JSON). */
  body: unknown;
  /** The role the call ran as (null when refused before PostgREST picked one). */
  role: ApiRole | null;
  claims: Record<string, unknown> | null;
  /** Whether the function call reached the database. */
  sqlRan: boolean;
  status: number;
  /** The parsed JSON answer. */
  response: unknown;
}

export interface FakePostgrestOptions {
  /** A superuser connection: it reads the catalog and switches to the API roles like PostgREST's authenticator. */
  sql: SqlClient;
  /** The project API keys the gateway accepts in the apikey header. */
  apiKeys: string[];
  /** Exposed schemas; the first is the default. */
  schemas?: string[];
}

export interface FakePostgrest {
  fetch: typeof fetch;
  readonly requests: RecordedRequest[];
  /** The recorded requests for one function. */
  callsTo(fn: string): RecordedRequest[];
}

// ---------- JWTs (unsigned-ish: the fake reads the payload, it does not check the signature) ----------

const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

export function makeJwt(claims: Record<string, unknown>): string {
  return [base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' })), base64url(JSON.stringify(claims)), base64url('not-verified')].join('.');
}

const IN_TEN_YEARS = () => Math.floor(Date.now() / 1000) + 10 * 365 * 24 * 3600;

/** A legacy Supabase API key (a JWT naming the role), as the dashboard hands them out. */
export function projectKey(role: 'anon' | 'service_role', ref = 'mindbot-test'): string {
  return makeJwt({ iss: 'supabase', ref, role, iat: Math.floor(Date.now() / 1000), exp: IN_TEN_YEARS() });
}

/** A signed-in user's access token as Supabase Auth issues it. */
export function userAccessToken(userId: string, extra: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return makeJwt({
    iss: 'http://supabase.test/auth/v1', aud: 'authenticated', sub: userId, role: 'authenticated',
    iat: now, exp: now + 3600, aal: 'aal1', session_id: crypto.randomUUID(), ...extra,
  });
}

function decodeJwt(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`Expected 3 parts in JWT; got ${parts.length}`);
  const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new Error('JWT payload is not an object');
  return payload as Record<string, unknown>;
}

// ---------- PostgREST's rules ----------

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message));
  }
}

const pgrst = (status: number, code: string, message: string, details: string | null = null, hint: string | null = null) =>
  new HttpError(status, { code, details, hint, message }, status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});

/** PostgREST's mapSQLtoHTTP (Error.hs). `authed`: the request's role is not the anonymous one. */
export function httpStatusForSqlState(code: string, message: string, authed: boolean): number {
  const exact: Record<string, number> = {
    '23503': 409, '23505': 409, '25006': 405, '53400': 500, '57P01': 503, P0001: 400, '42883': 404, '42P01': 404,
    '42P17': 500,
  };
  if (code === '42501') return authed ? 403 : 401;
  if (code === '21000') return message.endsWith('requires a WHERE clause') ? 400 : 500;
  if (code === '22023') return message.startsWith('role') && message.endsWith('does not exist') ? 401 : 400;
  if (exact[code] !== undefined) return exact[code];
  if (code.startsWith('PT')) return Number(code.slice(2)) || 500;
  const byClass: Record<string, number> = {
    '08': 503, '09': 500, '0L': 403, '0P': 403, '25': 500, '28': 403, '2D': 500, '38': 500, '39': 500, '3B': 500,
    '40': 500, '53': 503, '54': 500, '55': 500, '57': 500, '58': 500, F0: 500, HV: 500, P0: 500, XX: 500,
  };
  return byClass[code.slice(0, 2)] ?? 400;
}

interface RoutineParam {
  name: string;
  type: string;
  required: boolean;
}

interface Routine {
  params: RoutineParam[];
  volatility: 'i' | 's' | 'v';
  returnsScalar: boolean;
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

// The part of PostgREST's funcsSqlQuery (SchemaCache.hs) this fake needs. Like PostgREST, it lists every
// function of the schema whatever the caller's privileges: EXECUTE is checked when the call runs.
const ROUTINES_SQL = `
  select p.provolatile as volatility,
         not p.proretset and t.typtype <> 'c' and not coalesce(p.proargmodes::text[] && '{t,b,o}', false) as returns_scalar,
         coalesce((select pg_catalog.json_agg(pg_catalog.json_build_object(
                     'name', coalesce(a.name, ''), 'type', a.type::regtype::text,
                     'required', a.idx <= (p.pronargs - p.pronargdefaults)) order by a.idx)
                     from unnest(p.proargnames, p.proargtypes::oid[], p.proargmodes)
                          with ordinality as a(name, type, mode, idx)
                    where a.type is not null), '[]'::json) as params
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    join pg_catalog.pg_type t on t.oid = p.prorettype
   where n.nspname = $1 and p.proname = $2 and p.prokind = 'f' and t.oid <> 'trigger'::regtype`;

/** PostgREST's findProc (Plan.hs): the overload whose parameter names fit the argument keys. */
function matches(routine: Routine, keys: Set<string>): boolean {
  const required = routine.params.filter((p) => p.required).map((p) => p.name);
  const optional = new Set(routine.params.filter((p) => !p.required).map((p) => p.name));
  if (routine.params.length === 0) return keys.size === 0;
  const keysBeyondOptional = [...keys].filter((k) => !optional.has(k));
  return keysBeyondOptional.length === required.length && required.every((r) => keys.has(r));
}

function noRpc(schema: string, fn: string, keys: string[]): HttpError {
  const func = `${schema}.${fn}`;
  const params = keys.length === 0 ? ' without parameters' : `(${keys.join(', ')})`;
  const searched = keys.length === 0 ? ' without parameters' : ` with parameter${keys.length > 1 ? 's' : ''} ${keys.join(', ')}`;
  return pgrst(404, 'PGRST202', `Could not find the function ${func}${params} in the schema cache`,
    `Searched for the function ${func}${searched} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`);
}

/** A server error (node-postgres or PGlite): it has a severity and a five-character SQLSTATE. */
function isDatabaseError(error: unknown): error is { code: string; message: string; detail?: string; hint?: string } {
  if (error === null || typeof error !== 'object' || !('severity' in error)) return false;
  const code: unknown = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

export function createFakePostgrest(options: FakePostgrestOptions): FakePostgrest {
  const schemas = options.schemas ?? ['public'];
  const requests: RecordedRequest[] = [];

  async function serve(request: Request, record: RecordedRequest): Promise<{ status: number; text: string }> {
    // 1. The gateway: a project API key, or nothing reaches PostgREST.
    const apikey = request.headers.get('apikey') ?? new URL(request.url).searchParams.get('apikey');
    if (!apikey) {
      throw new HttpError(401, { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' });
    }
    if (!options.apiKeys.includes(apikey)) {
      throw new HttpError(401, { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' });
    }

    // 2. PostgREST: the route, the method, the schema.
    const match = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(record.path);
    if (!match) throw pgrst(404, 'PGRST125', 'Invalid path specified in request URL');
    const fn = decodeURIComponent(match[1]!);
    record.fn = fn;
    if (request.method !== 'POST') {
      throw new HttpError(501, { code: 'FAKE0', message: `this fake PostgREST serves only POST /rpc, not ${request.method}`, details: null, hint: null });
    }
    const schema = request.headers.get('content-profile') ?? schemas[0]!;
    if (!schemas.includes(schema)) {
      throw pgrst(406, 'PGRST106', `Invalid schema: ${schema}`, null, `Only the following schemas are exposed: ${schemas.join(', ')}`);
    }

    // The role and the claims, from the bearer JWT.
    let claims: Record<string, unknown> = {};
    const authorization = request.headers.get('authorization');
    if (authorization) {
      const bearer = /^Bearer (.+)$/i.exec(authorization);
      if (!bearer) throw pgrst(401, 'PGRST301', 'Invalid Authorization header: expected a Bearer token');
      try {
        claims = decodeJwt(bearer[1]!.trim());
      } catch (error) {
        throw pgrst(401, 'PGRST301', (error as Error).message);
      }
      if (typeof claims.exp === 'number' && claims.exp <= Date.now() / 1000) throw pgrst(401, 'PGRST303', 'JWT expired');
    }
    const role = typeof claims.role === 'string' ? claims.role : 'anon';
    if (role !== 'anon' && role !== 'authenticated' && role !== 'service_role') {
      throw new HttpError(401, { code: '22023', message: `role "${role}" does not exist`, details: null, hint: null });
    }
    record.role = role;
    record.claims = claims;
    const authed = role !== 'anon';

    // The named arguments.
    const text = await request.text();
    let args: unknown = {};
    if (text.trim() !== '') {
      try {
        args = JSON.parse(text);
      } catch {
        throw pgrst(400, 'PGRST102', 'Empty or invalid json');
      }
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) throw pgrst(400, 'PGRST102', 'Empty or invalid json');
    const keys = Object.keys(args).sort();

    try {
      // The schema cache: which function the keys name.
      const { rows } = await options.sql.query<{ volatility: 'i' | 's' | 'v'; returns_scalar: boolean; params: RoutineParam[] }>(
        ROUTINES_SQL, [schema, fn]);
      const candidates = rows
        .map((r): Routine => ({ params: r.params, volatility: r.volatility, returnsScalar: r.returns_scalar }))
        .filter((r) => matches(r, new Set(keys)));
      if (candidates.length === 0) throw noRpc(schema, fn, keys);
      if (candidates.length > 1) throw pgrst(300, 'PGRST203', `Could not choose the best candidate function for ${schema}.${fn}`);
      const routine = candidates[0]!;
      if (!routine.returnsScalar) {
        throw new HttpError(501, { code: 'FAKE1', message: 'this fake PostgREST answers only functions that return one scalar', details: null, hint: null });
      }

      // The call, built like PostgREST's callPlanToQuery: arguments typed by json_to_record from the body.
      const given = routine.params.filter((p) => keys.includes(p.name));
      const callee = `${quoteIdent(schema)}.${quoteIdent(fn)}`;
      const statement = given.length === 0
        ? `select coalesce((pg_catalog.json_agg(pgrst_call.pgrst_scalar) -> 0)::text, 'null') as body
             from (select ${callee}() as pgrst_scalar) pgrst_call`
        : `select coalesce((pg_catalog.json_agg(pgrst_call.pgrst_scalar) -> 0)::text, 'null') as body
             from (select $1::json as json_data) pgrst_payload,
                  lateral (select ${given.map((p) => quoteIdent(p.name)).join(', ')}
                             from pg_catalog.json_to_record(pgrst_payload.json_data)
                                  as _(${given.map((p) => `${quoteIdent(p.name)} ${p.type}`).join(', ')}) limit 1) pgrst_body,
                  lateral (select ${callee}(${given.map((p) => `${quoteIdent(p.name)} := pgrst_body.${quoteIdent(p.name)}`).join(', ')})
                             as pgrst_scalar) pgrst_call`;
      record.sqlRan = true;
      const body = await asRole(options.sql, role, claims, async (tx) => {
        if (routine.volatility !== 'v') await tx.exec('set transaction read only');
        const result = await tx.query<{ body: string }>(statement, given.length === 0 ? [] : [text]);
        return result.rows[0]?.body ?? 'null';
      });
      return { status: 200, text: body };
    } catch (error) {
      if (error instanceof HttpError) throw error;
      if (isDatabaseError(error)) {
        throw new HttpError(httpStatusForSqlState(error.code, error.message, authed), {
          code: error.code, details: error.detail ?? null, hint: error.hint ?? null, message: error.message,
        }, error.code === '42501' && !authed ? { 'WWW-Authenticate': 'Bearer' } : {});
      }
      // No answer from the database at all: what PostgREST's pool reports.
      throw pgrst(503, 'PGRST000', 'Database connection error.', error instanceof Error ? error.message : String(error));
    }
  }

  const handler = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const record: RecordedRequest = {
      method: request.method,
      url: request.url,
      path: url.pathname,
      fn: null,
      headers: Object.fromEntries([...request.headers].map(([k, v]) => [k.toLowerCase(), v])),
      body: undefined,
      role: null,
      claims: null,
      sqlRan: false,
      status: 0,
      response: undefined,
    };
    const bodyText = await request.clone().text();
    try {
      record.body = bodyText === '' ? undefined : JSON.parse(bodyText);
    } catch {
      record.body = undefined;
    }
    requests.push(record);

    let status: number;
    let text: string;
    let headers: Record<string, string> = JSON_HEADERS;
    try {
      ({ status, text } = await serve(request, record));
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      status = error.status;
      text = JSON.stringify(error.body);
      headers = { ...JSON_HEADERS, ...error.headers };
    }
    record.status = status;
    record.response = JSON.parse(text);
    return new Response(text, { status, headers });
  };

  return {
    fetch: handler as typeof fetch,
    requests,
    callsTo: (fn) => requests.filter((r) => r.fn === fn),
  };
}
