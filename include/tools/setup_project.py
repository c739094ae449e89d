"""``make setup``: install the project into the Airflow deployment the environment names.

1. ``airflow db migrate`` on ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``.
2. Connections: for each connection in ``--connections FILE`` (Airflow's ``connections import`` JSON
   format; default ``$OD_CONNECTIONS_FILE``) that is NOT already defined, create it in the metadata
   database. A connection given as ``AIRFLOW_CONN_<ID>``, in a secrets backend or already in the database
   always wins and is left untouched. Required connections that are defined nowhere are reported.
   ``od_airflow_db`` (Airflow's metadata database, for ``maintenance_cleanup``'s in-task ``airflow db
   clean``) is created from ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` only while ``[od_scheduler]
   metadata_cleanup_in_task`` is on. While it is off (the default) no task may hold those credentials:
   an ``od_airflow_db`` an earlier setup created is removed, and one defined elsewhere is reported.
3. Pools (created or resized): each registered platform's (its registry entry's ``pool``, ``pool_slots``
   and ``pool_description``) and the shared ones in ``include/pools.json`` (the CMS, the Data API).
4. The job-history schema (the package's ``od_scheduler/sql/*.sql``, idempotent) on the ``od_job_history``
   connection.

Safe to run any number of times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The shared pools (the CMS, the Data API); each platform's pool comes from its registry entry.
POOLS_FILE = ROOT / "include" / "pools.json"


def required_connections() -> tuple[str, ...]:
    """The CMS, the Data API, the job history, and every registered platform's upstream."""
    from od_scheduler import conn_ids
    from od_scheduler.platforms import PLATFORMS

    platform_conns = sorted({p.conn_id for p in PLATFORMS.values()})
    return (conn_ids.PAYLOAD_CMS, conn_ids.DATA_API, conn_ids.JOB_HISTORY, *platform_conns)


def package_sql_dir() -> Path:
    """The job-history migrations shipped in the installed od_scheduler package."""
    from od_scheduler.hooks.job_history import SQL_DIR

    return SQL_DIR


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def migrate() -> None:
    step("Migrating Airflow's metadata database (airflow db migrate)")
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"airflow db migrate failed (exit {proc.returncode})")


def where_defined(conn_id: str) -> str | None:
    """Where Airflow would find ``conn_id``: 'environment', 'metadata database', 'secrets backend' or None."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    if os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return "environment"
    with create_session() as session:
        if session.query(Connection).filter(Connection.conn_id == conn_id).first() is not None:
            return "metadata database"
    try:
        Connection.get_connection_from_secrets(conn_id)
    except Exception:
        return None
    return "secrets backend"


#: The description setup gives the ``od_airflow_db`` it creates (so it knows which one it may remove).
METADATA_CONN_DESCRIPTION = "Airflow's metadata database (maintenance_cleanup runs `airflow db clean` on it)"


def metadata_cleanup_in_task() -> bool:
    """``[od_scheduler] metadata_cleanup_in_task``: whether tasks may hold the metadata DB's credentials."""
    from od_scheduler.settings import get_settings

    return get_settings().metadata_cleanup_in_task


def metadata_connection() -> dict[str, Any] | None:
    """``od_airflow_db``: Airflow's metadata DB, for maintenance_cleanup's ``airflow db clean``."""
    from airflow.configuration import conf
    from sqlalchemy.engine import make_url

    raw = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or conf.get("database", "sql_alchemy_conn")
    if not raw or not raw.startswith("postgresql"):
        return None
    url = make_url(raw)
    socket = url.query.get("host")
    return {
        "conn_type": "postgres",
        "description": METADATA_CONN_DESCRIPTION,
        "host": socket if isinstance(socket, str) else url.host,
        "port": url.port,
        "login": url.username,
        "password": url.password,
        "schema": url.database,
        "extra": {"driver": url.drivername},
    }


def ensure_connections(defined: dict[str, dict[str, Any]], *, replace_db: bool = False) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    step("Connections (an existing definition always wins)")
    for conn_id in sorted(set(defined) | set(required_connections())):
        source = where_defined(conn_id)
        replaced = source == "metadata database" and replace_db and conn_id in defined
        if replaced:
            with create_session() as session:
                session.query(Connection).filter(Connection.conn_id == conn_id).delete()
            source = None
        if source:
            print(f"    {conn_id:<16} kept ({source})")
            continue
        if conn_id not in defined:
            print(f"    {conn_id:<16} MISSING: define AIRFLOW_CONN_{conn_id.upper()} or add it in the UI")
            continue
        spec = dict(defined[conn_id])
        extra = spec.pop("extra", None)
        conn = Connection(
            conn_id=conn_id, extra=json.dumps(extra) if isinstance(extra, dict) else extra, **spec
        )
        with create_session() as session:
            session.add(conn)
        print(f"    {conn_id:<16} {'replaced' if replaced else 'created'}")


def retire_metadata_connection() -> None:
    """With metadata cleanup outside tasks, remove the ``od_airflow_db`` an earlier setup created: every
    task can read a connection, and this one holds the credentials of Airflow's metadata database."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    conn_id = "od_airflow_db"
    step("Airflow's metadata is pruned outside tasks ([od_scheduler] metadata_cleanup_in_task is off)")
    source = where_defined(conn_id)
    if source is None:
        print(f"    {conn_id:<16} not defined: no task holds the metadata database's credentials")
        return
    if source == "metadata database":
        with create_session() as session:
            conn = session.query(Connection).filter(Connection.conn_id == conn_id).one()
            if conn.description == METADATA_CONN_DESCRIPTION:
                session.delete(conn)
                print(f"    {conn_id:<16} removed (an earlier setup created it for the in-task cleanup)")
                return
    print(
        f"    {conn_id:<16} WARNING: still defined ({source}), so every task can read the metadata "
        "database's credentials; nothing needs it while metadata_cleanup_in_task is off: remove it"
    )


def pools(pools_file: Path = POOLS_FILE) -> dict[str, dict[str, Any]]:
    """Every pool the project's tasks name: the shared ones in ``pools_file``, then each platform's."""
    from od_scheduler.platforms import platform_pools

    shared: dict[str, dict[str, Any]] = json.loads(pools_file.read_text())
    per_platform = platform_pools()
    if clash := sorted(shared.keys() & per_platform.keys()):
        raise SystemExit(
            f"{pools_file} defines {', '.join(clash)}, which a platform's registry entry sizes: remove it"
        )
    return {**shared, **per_platform}


def import_pools(pools_file: Path) -> None:
    from airflow.models.pool import Pool

    where = pools_file.relative_to(ROOT) if pools_file.is_relative_to(ROOT) else pools_file
    step(f"Pools from the platform registry and {where}")
    for name, spec in pools(pools_file).items():
        Pool.create_or_update_pool(
            name=name,
            slots=int(spec["slots"]),
            description=spec.get("description", ""),
            include_deferred=bool(spec.get("include_deferred", False)),
        )
        print(f"    {name:<18} {spec['slots']} slot(s)")


def apply_schema(sql_dir: Path) -> None:
    import psycopg
    from airflow.models.connection import Connection

    step(f"Job-history schema ({sql_dir}) on connection od_job_history")
    conn = Connection.get_connection_from_secrets("od_job_history")
    kwargs: dict[str, Any] = {"host": conn.host, "dbname": conn.schema or "postgres", "user": conn.login}
    if conn.port:
        kwargs["port"] = conn.port
    if conn.password:
        kwargs["password"] = conn.password
    with psycopg.connect(**kwargs, autocommit=False) as db:
        for path in sorted(sql_dir.glob("*.sql")):
            db.execute(path.read_text())  # type: ignore[call-overload]
            print(f"    applied {path.name}")
        db.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--connections",
        type=Path,
        default=os.environ.get("OD_CONNECTIONS_FILE"),
        help="JSON file of connections to create where not already defined",
    )
    parser.add_argument(
        "--pools", type=Path, default=POOLS_FILE, help="the shared pools (each platform's is in its entry)"
    )
    parser.add_argument(
        "--sql-dir", type=Path, default=None, help="default: the installed package's od_scheduler/sql"
    )
    parser.add_argument(
        "--replace-db-connections",
        action="store_true",
        help="replace metadata-DB connections named in the file (the local tools own theirs); "
        "environment and secrets-backend connections still win",
    )
    parser.add_argument("--skip-migrate", action="store_true", help="the metadata DB is already migrated")
    args = parser.parse_args(argv)
    if not os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        print(
            "warning: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is not set; using airflow.cfg's [database]",
            file=sys.stderr,
        )
    if not args.skip_migrate:
        migrate()
    defined = json.loads(args.connections.read_text()) if args.connections else {}
    in_task = metadata_cleanup_in_task()
    if not in_task:
        defined.pop("od_airflow_db", None)
    elif "od_airflow_db" not in defined and (metadb := metadata_connection()) is not None:
        defined["od_airflow_db"] = metadb
    ensure_connections(defined, replace_db=args.replace_db_connections)
    if not in_task:
        retire_metadata_connection()
    import_pools(args.pools)
    apply_schema(args.sql_dir or package_sql_dir())
    step("Setup complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
