// What Supabase's API roles (anon: the public key; authenticated: any signed-in user) may touch, on a database set up
// as a Supabase project is: its default privileges grant every new table, sequence and function in schema public to
// them. The migrations must leave them exactly what they grant on purpose, and no sequence at all (anon calling
// setval() on the ledger's identity would make every later balance change fail on a duplicate id).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { MIGRATIONS_DIR } from '../src/billing/migrate.ts';
import type { SqlClient } from '../src/billing/sql-client.ts';
import { asRole, createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';

const API_ROLES = ['anon', 'authenticated'] as const;

/** As supabase/postgres's init scripts leave a project: the API roles, then default grants on schema public. */
async function asSupabaseProject(sql: SqlClient): Promise<void> {
  await sql.exec(readFileSync(`${MIGRATIONS_DIR}bootstrap/supabase-compat.sql`, 'utf8'));
  await sql.exec(`
    alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
    alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
    alter default privileges in schema public grant all on functions to anon, authenticated, service_role;`);
}

/** Every privilege an API role holds on a table, sequence or function outside the system schemas. */
async function apiRolePrivileges(sql: SqlClient): Promise<string[]> {
  const { rows } = await sql.query<{ grant: string }>(`
    with roles(role) as (select unnest($1::text[])),
    relations as (
      select r.role, c.oid, n.nspname || '.' || c.relname as name, c.relkind
        from pg_class c join pg_namespace n on n.oid = c.relnamespace, roles r
       where c.relkind in ('r', 'v', 'm', 'S', 'p')
         and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
    )
    select role || ' ' || p || ' on table ' || name as grant
      from relations, unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
     where relkind <> 'S' and has_table_privilege(role, oid, p)
    union all
    select role || ' ' || p || ' on sequence ' || name
      from relations, unnest(array['USAGE', 'SELECT', 'UPDATE']) p
     where relkind = 'S' and has_sequence_privilege(role, oid, p)
    union all
    select r.role || ' EXECUTE on function ' || f.oid::regprocedure::text
      from pg_proc f join pg_namespace n on n.oid = f.pronamespace, roles r
     where n.nspname not in ('pg_catalog', 'information_schema', 'auth')
       and has_function_privilege(r.role, f.oid, 'EXECUTE')
     order by 1`, [API_ROLES]);
  return rows.map((r) => r.grant);
}

describe('API role privileges under Supabase default privileges', () => {
  let supabase: TestDatabase;
  let plain: TestDatabase;
  before(async () => {
    [supabase, plain] = await Promise.all([createPostgresDatabase({ beforeMigrate: asSupabaseProject }), createPostgresDatabase()]);
  });
  after(async () => {
    await supabase?.close();
    await plain?.close();
  });

  it('leaves no sequence to anon or authenticated: setval and nextval are refused on every one', async () => {
    const { rows: sequences } = await supabase.sql.query<{ name: string }>(`
      select pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'S'`);
    assert.ok(sequences.some((s) => s.name === 'public.ledger_entries_id_seq'), JSON.stringify(sequences));
    assert.deepEqual((await apiRolePrivileges(supabase.sql)).filter((g) => / on sequence /.test(g)), []);
    for (const role of API_ROLES) {
      for (const { name } of sequences) {
        for (const statement of [`select setval('${name}', 1)`, `select nextval('${name}')`, `select currval('${name}')`]) {
          await assert.rejects(asRole(supabase.sql, role, { sub: newUserId() }, (tx) => tx.query(statement)),
            (error: { code?: string }) => error.code === '42501', `${role}: ${statement}`);
        }
      }
    }
  });

  it('grants the API roles exactly what a database without those defaults grants them', async () => {
    assert.deepEqual(await apiRolePrivileges(supabase.sql), await apiRolePrivileges(plain.sql));
  });

  it('grants nothing to the API roles on tables, sequences and functions made after the migrations', async () => {
    await supabase.sql.exec(`
      create table public.later_table (id bigint generated always as identity primary key, note text);
      create sequence public.later_sequence;
      create function public.later_function() returns int language sql as 'select 1';`);
    try {
      assert.deepEqual((await apiRolePrivileges(supabase.sql)).filter((g) => /later_/.test(g) && !/ EXECUTE on function /.test(g)), []);
      // PostgreSQL itself lets PUBLIC execute a new function (so a migration revokes that); Supabase's grant is gone.
      const { rows } = await supabase.sql.query<{ acl: string }>(`
        select coalesce(relacl::text, '') as acl from pg_class where relname in ('later_table', 'later_table_id_seq', 'later_sequence')
        union all select coalesce(proacl::text, '') from pg_proc where proname = 'later_function'`);
      assert.equal(rows.length, 4);
      for (const { acl } of rows) assert.doesNotMatch(acl, /\b(anon|authenticated)=/, acl);
    } finally {
      await supabase.sql.exec('drop table public.later_table; drop sequence public.later_sequence; drop function public.later_function()');
    }
  });

  it('still records balance changes: the ledger needs no sequence grant for its writers', async () => {
    const store = supabase.store();
    try {
      const user = newUserId();
      await store.adjustUserTime({ userId: user, seconds: 600, reason: 'privileges test', idempotencyKey: `privileges-${user}` });
      assert.equal((await store.getBalance(user)).total_seconds, 600);
    } finally {
      await store.close();
    }
  });
});
