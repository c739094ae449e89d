"""Run the sandbox: ``python -m include.sandbox --host 127.0.0.1 --port 8765 [--port-file PATH]``.

``--port 0`` picks a free port. Once the server accepts connections it prints exactly one line,
``sandbox listening on http://<host>:<port>``, and writes the port to ``--port-file`` (atomically,
so a reader never sees a half-written file). SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from include.sandbox.app import create_app
from include.sandbox.config import DEFAULT_CMS_API_KEY, DEFAULT_DATA_API_KEY, DEFAULT_SEED, SandboxConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m include.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default 8765)")
    parser.add_argument("--port-file", type=Path, help="write the port to this file once listening")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"data seed (default {DEFAULT_SEED})")
    parser.add_argument("--cms-api-key", default=DEFAULT_CMS_API_KEY, help="PayloadCMS API key")
    parser.add_argument("--data-api-key", default=DEFAULT_DATA_API_KEY, help="Data API key (X-API-Key)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    parser.add_argument(
        "--fleet", type=int, default=0, help="add N generated Dealer.com dealers (benchmarks)"
    )
    parser.add_argument("--fleet-only", action="store_true", help="serve only the generated dealers")
    parser.add_argument("--fleet-vehicles", type=int, default=30, help="vehicles per generated dealer (30)")
    parser.add_argument(
        "--fleet-latency-s", type=float, default=0.0, help="latency of every request to a generated dealer"
    )
    return parser.parse_args(argv)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP. Without
    # it every answer whose headers and body went out as two writes waited for the client's delayed ACK:
    # 40 ms added to every request (a 0.1 s latency answered after 0.14 s).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _write_port_file(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(str(port))
    tmp.replace(path)


async def _serve(server: uvicorn.Server, sock: socket.socket, host: str, port_file: Path | None) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # startup failed: surface the error
            return
        await asyncio.sleep(0.01)
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"sandbox listening on http://{shown}:{port}", flush=True)
    if port_file is not None:
        _write_port_file(port_file, port)
    await task


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = SandboxConfig(
        seed=args.seed,
        cms_api_key=args.cms_api_key,
        data_api_key=args.data_api_key,
        fleet=args.fleet,
        fleet_only=args.fleet_only,
        fleet_vehicles=args.fleet_vehicles,
        fleet_latency_s=args.fleet_latency_s,
    )
    sock = _bind(args.host, args.port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level=args.log_level, access_log=False, lifespan="off")
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; make that a clean exit.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        asyncio.run(_serve(server, sock, args.host, args.port_file))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
