-- One database per service, each owned by that service's own LOGIN role, and nothing more.
--
-- Run by psql as a superuser: natively by quartet_tools.infra on every start of the server (so it is
-- idempotent), in Compose by deploy/compose/postgres-init.sh when the data volume is new. The passwords come
-- from the environment (\getenv), never from this file: POSTGRES_TRAINING_PASSWORD, POSTGRES_PLANNING_PASSWORD,
-- POSTGRES_RENTAL_PASSWORD, POSTGRES_SIMULATOR_PASSWORD.
--
-- training, planning, rental: each owns its database, so it may create its tables there (the public schema
-- belongs to the database's owner) and nothing elsewhere. simulator: no database of its own; it may connect to
-- rental and read its tables, for the lease and event audit. None may log in as or create another role,
-- create databases, replicate or bypass row security.
\set ON_ERROR_STOP on

\getenv training_password POSTGRES_TRAINING_PASSWORD
\getenv planning_password POSTGRES_PLANNING_PASSWORD
\getenv rental_password POSTGRES_RENTAL_PASSWORD
\getenv simulator_password POSTGRES_SIMULATOR_PASSWORD

SELECT format('CREATE ROLE %I', r)
  FROM unnest(ARRAY['training', 'planning', 'rental', 'simulator']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE training LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'training_password';
ALTER ROLE planning LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'planning_password';
ALTER ROLE rental LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'rental_password';
ALTER ROLE simulator LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'simulator_password';

SELECT format('CREATE DATABASE %I OWNER %I', d, d)
  FROM unnest(ARRAY['training', 'planning', 'rental']) AS d
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d) \gexec

ALTER DATABASE training OWNER TO training;
ALTER DATABASE planning OWNER TO planning;
ALTER DATABASE rental OWNER TO rental;
-- Every role may CONNECT to (and make temporary tables in) a new database until this is revoked: here from
-- every database there is (the server's own included), so a service role gets into its own database only.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', datname)
  FROM pg_database WHERE NOT datistemplate \gexec
GRANT CONNECT ON DATABASE rental TO simulator;

\connect rental
-- Tables rental's migrations create from now on, and those already there, are readable by the audit.
ALTER DEFAULT PRIVILEGES FOR ROLE rental IN SCHEMA public GRANT SELECT ON TABLES TO simulator;
GRANT USAGE ON SCHEMA public TO simulator;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO simulator;
