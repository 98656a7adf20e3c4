-- The small part of Supabase that the billing migrations depend on: the API roles, schema auth and
-- auth.uid()/auth.role()/auth.jwt() reading request.jwt.claims exactly as PostgREST sets them.
-- The migration runner applies this file only where schema "auth" does not exist, so it never runs on a
-- Supabase project (hosted Supabase forbids creating objects in auth). It is idempotent.

-- Roles are cluster-wide, so two databases of one cluster may bootstrap at the same moment (parallel test
-- runs do): a role or membership that appears meanwhile is fine.
do $$
declare
  v_role text;
begin
  foreach v_role in array array['anon', 'authenticated', 'service_role', 'authenticator'] loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role) then
      begin
        execute pg_catalog.format('create role %I nologin noinherit%s', v_role,
          case when v_role = 'service_role' then ' bypassrls' else '' end);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
  foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.pg_has_role('authenticator', v_role, 'member') then
      begin
        execute pg_catalog.format('grant %I to authenticator', v_role);
      exception when duplicate_object or unique_violation or internal_error then
        null;  -- internal_error: "tuple concurrently updated" from a parallel grant of the same membership
      end;
    end if;
  end loop;
end $$;

create schema if not exists auth;

-- Bodies as in supabase/auth's migration 20240624145325_recreate_auth_functions.
create or replace function auth.uid() returns uuid
  language sql stable set search_path to ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
  language sql stable set search_path to ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
  language sql stable set search_path to ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;
