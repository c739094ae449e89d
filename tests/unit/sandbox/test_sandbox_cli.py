"""``python -m include.sandbox --port 0 --port-file PATH`` starts a real server on a free port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_cli_starts_reports_its_port_and_answers_health(tmp_path: Path) -> None:
    port_file = tmp_path / "sandbox.port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "include.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "sandbox exited"
            assert time.monotonic() < deadline, "sandbox did not write its port file in 30 s"
            time.sleep(0.05)
        port = int(port_file.read_text())

        assert proc.stdout is not None
        assert proc.stdout.readline() == f"sandbox listening on http://127.0.0.1:{port}\n"
        response = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=5)
        assert response.json() == {"ok": True}
        cms = httpx.get(
            f"http://127.0.0.1:{port}/cms/api/dealers",
            params={"limit": 1},
            headers={"Authorization": "users API-Key sandbox-cms-key"},
            timeout=5,
        ).json()
        assert cms["docs"][0]["dealer_com_config"]["base_url"].startswith(
            f"http://127.0.0.1:{port}/dealer-com/"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_the_sandbox_socket_sends_answers_without_waiting_for_an_ack() -> None:
    """asyncio sets TCP_NODELAY only on sockets created as TCP: with the default protocol (0) every answer
    written as headers then body waited for the client's delayed ACK, 40 ms a request."""
    import asyncio
    import socket

    from include.sandbox.__main__ import _bind

    sock = _bind("127.0.0.1", 0)
    nodelay: list[int] = []

    async def scenario() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nodelay.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            for _ in range(100):
                if nodelay:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(scenario())
    assert sock.proto == socket.IPPROTO_TCP
    assert nodelay, "the server accepted the connection"
    assert nodelay[0] != 0, "accepted connections have TCP_NODELAY"
