#!/bin/bash
# docker-compose only. The postgres image runs this once, when its data volume is first initialised; it is
# idempotent, so a volume created before it existed gets the same with
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/02-celery-results.sh
#
# Celery's result backend gets its own login role and database, apart from Airflow's metadata database:
# the Celery workers must hold the result backend's URL, and every task process inherits their environment
# (Airflow 3 replaces only [database] sql_alchemy_conn there), so with results kept in the metadata database
# every task could read the metadata role's password. This role owns its database (Celery creates its
# celery_taskmeta and celery_tasksetmeta tables there on the workers' first start) and nothing else, and may
# not connect to the metadata database (01-job-history.sh revoked that from PUBLIC). Names default to
# od_celery_results; the password comes from CELERY_RESULTS_DB_PASSWORD (docker-compose.yaml passes the
# same value to AIRFLOW__CELERY__RESULT_BACKEND).
# No `set -u`: the image sources a script that lost its executable bit, and -u would outlive it.
set -eo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="${CELERY_RESULTS_DB_USER:-od_celery_results}" \
    -v db="${CELERY_RESULTS_DB_NAME:-od_celery_results}" \
    -v password="${CELERY_RESULTS_DB_PASSWORD:?set CELERY_RESULTS_DB_PASSWORD}" \
    -v metadata_db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
-- Only its owner (and the superuser) may connect to either database.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"metadata_db" FROM PUBLIC;
SQL
