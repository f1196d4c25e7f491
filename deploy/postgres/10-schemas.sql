-- Step 2 of 2, connected to the database "supervision" AS supervision_owner (no superuser needed).
-- Idempotent; run it once before the first migration (it may run again at any time).
--
--   psql "postgresql://supervision_owner@db.example.internal:5432/supervision" -v ON_ERROR_STOP=1 \
--     -f deploy/postgres/10-schemas.sql
--
-- Each service's schema belongs to supervision_owner, which runs the migrations (DDL). The service's
-- own role may use only that schema and only read and write rows: it cannot create, alter or drop
-- tables (so it cannot remove the audit log's append-only triggers either) and cannot see the other
-- services' schemas at all.

\set ON_ERROR_STOP on

DO $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['registry', 'selection', 'casework', 'appraisal', 'finance', 'notify'] LOOP
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', svc);
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', svc);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', svc, svc);
        -- Tables and sequences the migrations create from now on ...
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                       'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', svc, svc);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                       'GRANT USAGE, SELECT ON SEQUENCES TO %I', svc, svc);
        -- ... and those that exist already.
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', svc, svc);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', svc, svc);
    END LOOP;
END
$$;

-- The scheduler (shared/scheduler.py): procrastinate's job tables in the schema "scheduler", made by the
-- migrations as supervision_owner. Every service role reads and writes its rows (each works only on the
-- queue of its own name) and calls its functions; none may create anything there.
DO $$
DECLARE
    svc text;
BEGIN
    CREATE SCHEMA IF NOT EXISTS scheduler;
    REVOKE ALL ON SCHEMA scheduler FROM PUBLIC;
    FOREACH svc IN ARRAY ARRAY['registry', 'selection', 'casework', 'appraisal', 'finance', 'notify'] LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA scheduler TO %I', svc);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA scheduler '
                       'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', svc);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA scheduler '
                       'GRANT USAGE, SELECT ON SEQUENCES TO %I', svc);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA scheduler TO %I', svc);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA scheduler TO %I', svc);
    END LOOP;
END
$$;
