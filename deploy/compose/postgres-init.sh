#!/bin/sh
# Compose's PostgreSQL runs this once, when its data volume is new: one database and one least-privilege role
# per service, from the same script `make up` runs natively. The roles' passwords reach psql in the environment
# (POSTGRES_<ROLE>_PASSWORD, from .env; see .env.example), never on its command line.
set -e
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f /quartet/roles.sql
