import type { RpcTransport } from './store.ts';
import type { SqlClient } from './sql-client.ts';
import { toBillingError } from './errors.ts';

const FUNCTION_NAME = /^[a-z_][a-z0-9_]*$/;

function encode(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return value;
}

/**
 * Calls public.<fn>(name => value, …) in one statement, so each call is one round trip and one transaction.
 * Serves node-postgres and PGlite alike.
 */
export function sqlTransport(db: SqlClient): RpcTransport {
  const statements = new Map<string, string>();
  const statementFor = (fn: string, names: string[]) => {
    const cacheKey = `${fn}(${names.join(',')})`;
    let text = statements.get(cacheKey);
    if (!text) {
      if (!FUNCTION_NAME.test(fn) || !names.every((n) => FUNCTION_NAME.test(n))) {
        throw new Error(`not a function call: ${cacheKey}`);
      }
      text = `select public.${fn}(${names.map((n, i) => `${n} => $${i + 1}`).join(', ')}) as result`;
      statements.set(cacheKey, text);
    }
    return text;
  };

  return {
    async call(fn, args) {
      const entries = Object.entries(args).filter(([, value]) => value !== undefined);
      const text = statementFor(fn, entries.map(([name]) => name));
      try {
        const { rows } = await db.query<{ result: unknown }>(text, entries.map(([, value]) => encode(value)));
        return rows[0]?.result;
      } catch (error) {
        throw toBillingError(error);
      }
    },
    close: () => db.close(),
  };
}
