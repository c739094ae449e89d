"""Write the docker compose deployment's ``.env``: ``.env.example`` with a fresh value for every secret.

    python3 include/tools/compose_env.py            # writes .env next to docker-compose.yaml
    python3 include/tools/compose_env.py PATH       # writes PATH instead

Standard library only, so it runs before anything is installed. Every secret ``.env.example`` leaves empty
is generated (the Fernet key in Fernet's format; the rest letters and digits, since several go into URLs),
the job history's, the Celery result backend's and Flower's credentials are generated instead of left at
their defaults, and every user in ``AIRFLOW_USERS`` gets a password in ``AIRFLOW_PASSWORDS``. The file is
readable by its owner only. An existing file is never overwritten: the passwords in it are the ones the
postgres and minio volumes were created with.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"

_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _password() -> str:
    return secrets.token_hex(20)


#: Secrets generated where the example leaves them empty.
REQUIRED: dict[str, Callable[[], str]] = {
    "AIRFLOW_FERNET_KEY": _fernet_key,
    "AIRFLOW_JWT_SECRET": _password,
    "AIRFLOW_SECRET_KEY": _password,
    "AIRFLOW_DB_PASSWORD": _password,
    "MINIO_ROOT_PASSWORD": _password,
    "OD_STAGING_SECRET_KEY": _password,
}
#: Credentials with a (well-known) default in the example, generated for a new deployment all the same.
UNCOMMENTED: dict[str, Callable[[], str]] = {
    "OD_JOB_HISTORY_DB_PASSWORD": _password,
    "CELERY_RESULTS_DB_PASSWORD": _password,
    "FLOWER_BASIC_AUTH": lambda: f"admin:{_password()}",
}


def render(example: str) -> str:
    """``example`` (the text of ``.env.example``) with every secret filled in."""
    users: list[str] = []
    lines = example.splitlines()
    for line in lines:
        match = _LINE.match(line)
        if match and not match["comment"] and match["key"] == "AIRFLOW_USERS":
            users = [pair.split(":", 1)[0].strip() for pair in match["value"].split(",") if pair.strip()]
    out = []
    for line in lines:
        match = _LINE.match(line)
        if match:
            key, value, commented = match["key"], match["value"], bool(match["comment"])
            if not commented and not value and key in REQUIRED:
                line = f"{key}={REQUIRED[key]()}"
            elif commented and key in UNCOMMENTED:
                line = f"{key}={UNCOMMENTED[key]()}"
            elif not commented and not value and key == "AIRFLOW_PASSWORDS":
                line = f"{key}={','.join(f'{user}:{_password()}' for user in users)}"
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else ROOT / ".env"
    if target.exists():
        print(f"{target} exists; not overwritten (its passwords are the ones the volumes were created with)")
        return 1
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render(EXAMPLE.read_text()))
    print(f"wrote {target}: the login is AIRFLOW_USERS with the passwords in AIRFLOW_PASSWORDS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
