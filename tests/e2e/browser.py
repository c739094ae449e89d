"""Headless Debian Chromium driven over the Chrome DevTools Protocol (a tiny client on ``websockets``).

No WebDriver, no Node: Chromium is started with ``--remote-debugging-port=0``, the port it chose is read
from ``DevToolsActivePort`` in its profile folder, and CDP commands go over one websocket with flattened
target sessions.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

INSTALL_HINT = (
    "Chromium is required for the status page browser test and was not found (looked for `chromium` on "
    "PATH and /usr/bin/chromium). Install Debian's package: `sudo apt-get install -y chromium` "
    "(`make test` installs it when it is missing)."
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,1000",
]


def chromium_path() -> str:
    """The Chromium binary, or a failed test saying how to install it (never a skip)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if not found:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


class CdpError(RuntimeError):
    """A CDP command answered with an error."""


class Page:
    """One tab: CDP commands in its session, and the events it received."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 60
    ) -> dict[str, Any]:
        return self.browser.call(method, params, session_id=self.session_id, timeout=timeout)

    def navigate(self, url: str, *, timeout: float = 60) -> int:
        """Load ``url`` and wait for its load event; returns the document's HTTP status."""
        self.browser.events.clear()
        frame = self.call("Page.navigate", {"url": url})
        if frame.get("errorText"):
            raise CdpError(f"navigation to {url} failed: {frame['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session_id, timeout=timeout)
        for event in self.browser.events:
            params = event.get("params", {})
            if event.get("method") == "Network.responseReceived" and params.get("type") == "Document":
                return int(params["response"]["status"])
        raise CdpError(f"no document response seen for {url}")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise CdpError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 60) -> Any:
        """Poll a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout}s waiting for: {expression} (last value {value!r})")

    def screenshot(self, path: Path, *, width: int = 1280, height: int | None = None) -> bytes:
        """A full-page PNG (up to ``height`` pixels) written to ``path``."""
        full = int(self.evaluate("document.documentElement.scrollHeight")) if height is None else height
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": min(max(full, 600), 6000), "deviceScaleFactor": 1, "mobile": False},
        )
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data


class Browser:
    """A running headless Chromium and the browser-level CDP connection."""

    def __init__(self, proc: subprocess.Popen[bytes], ws: ClientConnection) -> None:
        self.proc = proc
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        self._next_id += 1
        msg_id = self._next_id
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            data = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if data.get("id") == msg_id:
                if "error" in data:
                    raise CdpError(f"{method}: {data['error']}")
                return dict(data.get("result", {}))
            self.events.append(data)

    def wait_event(self, method: str, session_id: str | None, *, timeout: float) -> dict[str, Any]:
        def match(e: dict[str, Any]) -> bool:
            return e.get("method") == method and (session_id is None or e.get("sessionId") == session_id)

        for event in self.events:
            if match(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            data = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            self.events.append(data)
            if match(data):
                return data

    def new_page(self) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Page.enable")
        page.call("Network.enable")
        page.call("Runtime.enable")
        return page

    def set_cookie(self, name: str, value: str, url: str) -> None:
        self.call(
            "Storage.setCookies", {"cookies": [{"name": name, "value": value, "url": url, "path": "/"}]}
        )


@contextmanager
def chromium(profile: Path, log: Path) -> Iterator[Browser]:
    """Start headless Chromium with a fresh profile; stop it (its whole process group) afterwards."""
    binary = chromium_path()
    profile.mkdir(parents=True, exist_ok=True)
    port_file = profile / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"chromium did not start: {log.read_text()[-3000:]}")
                time.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]
            with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30) as ws:
                yield Browser(proc, ws)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
