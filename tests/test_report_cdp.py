"""A headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``), stdlib only.

``--dump-dom`` can only read a page once; clicking a chart, hovering a tooltip, waiting for a
live reload or timing the load needs a driver. Chromium reads JSON commands from fd 3 and
writes replies and events to fd 4, each message ended by a NUL byte.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


class Browser:
    """One Chromium process with one page; ``eval`` runs JavaScript and returns its value."""

    def __init__(self, profile: Path, *, width: int = 1280, height: int = 900) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def wire() -> None:  # the child's fds 3 and 4 are the protocol's pipe
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        cmd = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--remote-debugging-pipe", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "about:blank",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id, self.events = b"", 0, []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        got = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session = got["sessionId"]
        for domain in ("Page", "Runtime"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                  "deviceScaleFactor": 1, "mobile": False}, session=True)  # fmt: skip

    def _read(self, timeout: float) -> dict | None:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = self._read(deadline - time.monotonic())
            if reply is None:
                break
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def eval(self, expr: str) -> Any:
        got = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                        "awaitPromise": True}, session=True)  # fmt: skip
        if "exceptionDetails" in got:
            raise RuntimeError(got["exceptionDetails"].get("text", "") + " in " + expr[:80])
        return got["result"].get("value")

    def wait(self, expr: str, timeout: float = 30.0) -> Any:
        """Poll ``expr`` until it is truthy; return its value (TimeoutError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.eval(expr)
            except RuntimeError:  # the page is navigating
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(expr)

    def open(self, page: Path, fragment: str = "", *, ready: bool = True) -> float:
        """Navigate to ``page`` and wait until the report's script says ready; the seconds it took."""
        t0 = time.perf_counter()
        self.send("Page.navigate", {"url": page.resolve().as_uri() + fragment}, session=True)
        if ready:
            self.wait("document.readyState === 'complete' && document.body.dataset.ready === '1'",
                      timeout=120)  # fmt: skip
        return time.perf_counter() - t0

    def mouse(self, kind: str, x: float, y: float) -> None:
        """``kind``: mouseMoved, or "click" for a press and release at (x, y)."""
        kinds = [("mousePressed", 1), ("mouseReleased", 1)] if kind == "click" else [(kind, 0)]
        for k, clicks in kinds:
            self.send("Input.dispatchMouseEvent", {"type": k, "x": x, "y": y, "button": "left",
                      "clickCount": clicks}, session=True)  # fmt: skip

    def errors(self) -> list[str]:
        """Uncaught exceptions and console errors so far, and the page's own error log."""
        out = [
            json.dumps(e["params"])[:300]
            for e in self.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        ]
        logged = self.eval("document.documentElement.dataset.errors || ''")
        return out + ([logged] if logged else [])

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self._w)
        os.close(self._r)


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()


@needs_chromium
def test_browser_driver_evaluates_and_clicks(tmp_path, browser):
    page = tmp_path / "p.html"
    page.write_text(
        "<button id=b onclick=\"document.body.dataset.ready='1'\" "
        'style="position:absolute;left:10px;top:10px;width:50px;height:20px">x</button>'
    )
    browser.open(page, ready=False)
    browser.wait("document.readyState === 'complete'")
    browser.mouse("click", 30, 20)
    assert browser.wait("document.body.dataset.ready") == "1"
    assert browser.eval("1 + 2") == 3
