"""An S3-compatible server for tests: moto's server mode in a subprocess on a free loopback port.

Its access log (werkzeug's, one line per request) is the request log: :meth:`S3Server.requests` parses it,
so a test can prove which objects were written and read over S3, and by which method. Credentials are
fixed dummies; moto accepts any.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

ACCESS_KEY = "od-test-access-key"
SECRET_KEY = "od-test-secret-key"
REGION = "us-east-1"
#: ``127.0.0.1 - - [07/Dec/2026 09:22:37] "PUT /bucket/key?x=y HTTP/1.1" 200 -`` (colours stripped first).
_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class S3Request:
    """One request the server answered: method, bucket, key (``""`` for the bucket), query and status."""

    method: str
    bucket: str
    key: str
    query: str
    status: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """``python -m moto.server`` on 127.0.0.1; :meth:`stop` ends it."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self._proc.poll() is None:
            try:
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server did not start: {log_path.read_text()[-2000:]}")

    def client(self) -> Any:
        """A boto3 S3 client on this server (for setting up buckets and looking at what is there)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def connection(self) -> dict[str, Any]:
        """An Airflow ``aws`` connection to this server (``AIRFLOW_CONN_<ID>`` JSON)."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint, "region_name": REGION},
        }

    def requests(self) -> list[S3Request]:
        """Every request answered so far, in order (path-style: ``/<bucket>/<key>``)."""
        found = []
        for line in _ANSI.sub("", self.log_path.read_text(errors="replace")).splitlines():
            match = _LINE.search(line)
            if not match:
                continue
            parts = urlsplit(match["target"])
            bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
            found.append(S3Request(match["method"], bucket, key, parts.query, int(match["status"])))
        return found

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._log.close()
