#!/bin/bash
# docker-compose only. The postgres image runs this once, when its data volume is first initialised.
#
# The job history gets its own login role and database, apart from Airflow's metadata database: tasks
# connect to the job history (connection od_job_history), and a role that can reach Airflow's own tables
# could rewrite any run's state, which would undo Airflow 3's task isolation. The role owns its database
# (setup_project applies include/sql there as this role) and nothing else; it may not even connect to the
# metadata database. Names default to od_job_history; the password comes from OD_JOB_HISTORY_DB_PASSWORD
# (docker-compose.yaml passes the same value to the AIRFLOW_CONN_OD_JOB_HISTORY connection).
# No `set -u`: the image sources a script that lost its executable bit, and -u would outlive it.
set -eo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="${OD_JOB_HISTORY_DB_USER:-od_job_history}" \
    -v db="${OD_JOB_HISTORY_DB_NAME:-od_job_history}" \
    -v password="${OD_JOB_HISTORY_DB_PASSWORD:?set OD_JOB_HISTORY_DB_PASSWORD}" \
    -v metadata_db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
-- Only its owner (and the superuser) may connect to either database.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"metadata_db" FROM PUBLIC;
SQL
