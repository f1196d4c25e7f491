-- Step 1 of 2, as an administrator (a superuser, or on managed PostgreSQL the provider's admin
-- role with CREATEROLE and CREATEDB). Idempotent: run it again to rotate the passwords.
--
--   psql "postgresql://admin@db.example.internal:5432/postgres" -v ON_ERROR_STOP=1 \
--     -v owner_password="$OWNER_PW" -v registry_password="$REGISTRY_PW" \
--     -v selection_password="$SELECTION_PW" -v casework_password="$CASEWORK_PW" \
--     -v appraisal_password="$APPRAISAL_PW" -v finance_password="$FINANCE_PW" \
--     -v notify_password="$NOTIFY_PW" \
--     -f deploy/postgres/00-roles.sql
--
-- Creates the database "supervision" owned by supervision_owner (the role that runs the migrations,
-- MIGRATE_DATABASE_URL) and one login role per service (registry, selection, casework, appraisal,
-- finance, notify), each of which may only connect. Step 2 (10-schemas.sql) gives each its schema.

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN', r)
FROM unnest(ARRAY['supervision_owner', 'registry', 'selection', 'casework', 'appraisal', 'finance', 'notify']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)
\gexec

-- psql substitutes :'var' as a quoted literal; the password never appears in the script.
-- (Run \password ROLE interactively instead if you prefer.)
SET password_encryption = 'scram-sha-256';
ALTER ROLE supervision_owner LOGIN PASSWORD :'owner_password';
ALTER ROLE registry LOGIN PASSWORD :'registry_password';
ALTER ROLE selection LOGIN PASSWORD :'selection_password';
ALTER ROLE casework LOGIN PASSWORD :'casework_password';
ALTER ROLE appraisal LOGIN PASSWORD :'appraisal_password';
ALTER ROLE finance LOGIN PASSWORD :'finance_password';
ALTER ROLE notify LOGIN PASSWORD :'notify_password';

SELECT 'CREATE DATABASE supervision OWNER supervision_owner ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'supervision')
\gexec

-- Nobody connects unless named here; nobody creates objects in "public".
REVOKE ALL ON DATABASE supervision FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE supervision TO supervision_owner;
GRANT CONNECT ON DATABASE supervision TO registry, selection, casework, appraisal, finance, notify;

\connect supervision
REVOKE ALL ON SCHEMA public FROM PUBLIC;
