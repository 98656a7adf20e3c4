import { createHash } from 'node:crypto';
import type { RpcTransport } from './store.ts';
import type { SqlClient } from './sql-client.ts';
import { toBillingError } from './errors.ts';

const FUNCTION_NAME = /^[a-z_][a-z0-9_]*$/;

function encode(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return value;
}

// A named statement another client prepared on a backend a pooler now lends us (42P05), or one we prepared
// on a backend the pooler gave to someone else (26000). Both are raised before the statement runs.
const POOLER_STATEMENT_ERRORS = new Set(['42P05', '26000']);

/**
 * Calls public.<fn>(name => value, …) in one statement, so each call is one round trip and one transaction.
 * Serves node-postgres and PGlite alike.
 *
 * preparedStatements: prepare each call's statement once per connection (a fifth less server time per
 * call, measured). Only for a direct connection: a transaction-mode pooler (PgBouncer, Supavisor on port
 * 6543) and the embedded server's multiplexed socket share one backend among clients. A statement's name
 * is a hash of its text, so a name means the same statement on every backend, whoever prepared it; and
 * when a pooler's shared backends refuse a name anyway, the transport retries that call unnamed and names
 * no statement again (onPoolerDetected says so once).
 */
export function sqlTransport(db: SqlClient, options: { preparedStatements?: boolean; onPoolerDetected?: (error: unknown) => void } = {}): RpcTransport {
  let prepare = options.preparedStatements ?? false;
  const statements = new Map<string, { text: string; name: string }>();
  const statementFor = (fn: string, names: string[]) => {
    const cacheKey = `${fn}(${names.join(',')})`;
    let statement = statements.get(cacheKey);
    if (!statement) {
      if (!FUNCTION_NAME.test(fn) || !names.every((n) => FUNCTION_NAME.test(n))) {
        throw new Error(`not a function call: ${cacheKey}`);
      }
      const text = `select public.${fn}(${names.map((n, i) => `${n} => $${i + 1}`).join(', ')}) as result`;
      const name = `mindbot_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
      statement = { text, name };
      statements.set(cacheKey, statement);
    }
    return statement;
  };

  return {
    async call(fn, args) {
      const entries = Object.entries(args).filter(([, value]) => value !== undefined);
      const statement = statementFor(fn, entries.map(([name]) => name));
      const values = entries.map(([, value]) => encode(value));
      try {
        if (prepare) {
          try {
            return (await db.query<{ result: unknown }>(statement.text, values, { name: statement.name })).rows[0]?.result;
          } catch (error) {
            if (!POOLER_STATEMENT_ERRORS.has(String((error as { code?: unknown }).code))) throw error;
            if (prepare) options.onPoolerDetected?.(error);
            prepare = false;
          }
        }
        return (await db.query<{ result: unknown }>(statement.text, values)).rows[0]?.result;
      } catch (error) {
        throw toBillingError(error);
      }
    },
    close: () => db.close(),
  };
}
