#!/bin/sh
# On a new data directory: initdb with POSTGRES_USER (default postgres) as superuser and POSTGRES_PASSWORD as its
# password, create POSTGRES_DB (default: the user's name), run /docker-entrypoint-initdb.d/*.sh and *.sql once
# on a server listening on its socket only, stop it. Then run the command (the server) in this process's place.
set -eu
export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
# Present while the first start initialises: a volume whose initialisation failed is never served half-made.
unfinished="$PGDATA/.initialising"

if [ -e "$unfinished" ]; then
    echo "the initialisation of $PGDATA did not finish (its first start's log says why): remove the volume" \
        "(docker compose down -v) and start again" >&2
    exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD: the superuser's password for connections over the network}"
    # The password reaches initdb in a file only this user reads, never on a command line.
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    touch "$unfinished"
    # Inside the container only the socket is trusted; every connection over the network needs a password.
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    pg_ctl --pgdata="$PGDATA" --wait --silent --options="-c listen_addresses=''" start
    psql="psql -v ON_ERROR_STOP=1 -X -q --username=$POSTGRES_USER"
    if [ "$POSTGRES_DB" != postgres ]; then
        $psql --dbname=postgres --set=db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sh) echo "running $script"; sh "$script" ;;
            *.sql) echo "running $script"; $psql --dbname="$POSTGRES_DB" --file="$script" ;;
            *) [ -e "$script" ] && echo "ignoring $script (neither .sh nor .sql)" ;;
        esac
    done
    pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
    rm "$unfinished"
    echo "PostgreSQL initialised; starting the server"
fi
exec "$@"
