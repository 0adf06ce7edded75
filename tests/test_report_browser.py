"""The HTML report in a real headless browser (Debian's chromium): each page loads with no
console errors, every SVG plot is drawn at a non-zero size, and nothing but the page itself is
requested (the report promises no network). String checks in test_report.py cannot see what a
browser does with the page; this can.

The browser is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: NUL-ended
JSON on file descriptors 3 and 4), with the standard library only, so the test needs no Python
package and the report stays script-free. Host names resolve to nothing, so a reference to
the outside is seen as a request but never leaves the machine.

Skipped when chromium is not installed; `make test-browser` installs it and runs this file.
Set ATTNAD_REPORT_SHOTS=DIR to also save full-page screenshots of both reports there.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnad.cli import app

CHROMIUM = "chromium"  # Debian's package name and command (apt-get install chromium)
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="chromium not installed (make test-browser installs it)")

PAGE_WIDTH = 1200  # CSS pixels: wider than the report's 1040px column, as on a desktop
PAGE_HEIGHT = 900  # CSS pixels of the first viewport; screenshots grow it to the whole page
REPLY_TIMEOUT_S = 30.0  # one DevTools reply or page load; a healthy one takes well under 1 s
SETTLE_S = 0.3  # after the load event: late console messages and requests still arrive
FLAGS = ["--headless=new", "--no-sandbox",  # root in a container: no user namespace sandbox
         "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-sync",
         "--disable-background-networking", "--disable-component-update",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # requests are seen, none leaves the machine
         "--remote-debugging-pipe", f"--window-size={PAGE_WIDTH},{PAGE_HEIGHT}"]
# Run in the page after load: each SVG's drawn size and element count, and the page's height.
MEASURE = """JSON.stringify({
  svgs: [...document.querySelectorAll('svg')].map(s => {
    const r = s.getBoundingClientRect();
    return {w: r.width, h: r.height, shapes: s.querySelectorAll('rect,line,polyline').length};
  }),
  height: document.documentElement.scrollHeight, title: document.title})"""

runner = CliRunner()


class Chromium:
    """A headless chromium driven over the DevTools pipe: send commands, collect events."""

    def __init__(self, profile: Path):
        to_browser, self._w = os.pipe()
        self._r, from_browser = os.pipe()
        # the browser reads commands on fd 3 and writes replies on fd 4 (bash: dash takes
        # only one-digit descriptors in redirections)
        shell = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        self.proc = subprocess.Popen(
            ["bash", "-c", shell, CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._inbox: queue.Queue = queue.Queue()
        self._next_id = 0
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while chunk := os.read(self._r, 1 << 16):
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            for m in msgs:
                self._inbox.put(json.loads(m))
        self._inbox.put(None)  # the browser closed the pipe

    def _next(self, deadline: float) -> dict:
        try:
            msg = self._inbox.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise TimeoutError("chromium did not answer in time") from None
        if msg is None:
            raise RuntimeError("chromium exited")
        return msg

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while not any(e.get("method") == method and e.get("sessionId") == session
                      for e in self.events):
            self.events.append(self._next(deadline))

    def settle(self) -> None:
        deadline = time.monotonic() + SETTLE_S
        while True:
            try:
                self.events.append(self._next(deadline))
            except TimeoutError:
                return

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)


def load(browser: Chromium, page: Path, shot: Path | None = None) -> dict:
    """Open the page in a fresh tab: its measurements, console errors and requested URLs."""
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    sid = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        browser.call(f"{domain}.enable", sid)
    first = len(browser.events)
    url = page.resolve().as_uri()
    browser.call("Page.navigate", sid, url=url)
    browser.wait_for("Page.loadEventFired", sid)
    browser.settle()
    got = json.loads(browser.call("Runtime.evaluate", sid, expression=MEASURE,
                                  returnByValue=True)["result"]["value"])
    if shot is not None:
        browser.call("Emulation.setDeviceMetricsOverride", sid, width=PAGE_WIDTH,
                     height=got["height"], deviceScaleFactor=1, mobile=False)
        png = browser.call("Page.captureScreenshot", sid, format="png")["data"]
        shot.write_bytes(base64.b64decode(png))
    events = [e for e in browser.events[first:] if e.get("sessionId") == sid]
    browser.call("Target.closeTarget", targetId=target)
    got["url"] = url
    got["requests"] = [e["params"]["request"]["url"] for e in events
                       if e["method"] == "Network.requestWillBeSent"]
    got["errors"] = [_error_text(e) for e in events if _is_error(e)]
    return got


def _is_error(e: dict) -> bool:
    m, p = e["method"], e.get("params", {})
    return (m == "Runtime.exceptionThrown"
            or (m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"))
            or (m == "Log.entryAdded" and p["entry"].get("level") == "error"))


def _error_text(e: dict) -> str:
    p = e["params"]
    if "entry" in p:
        return f"{p['entry'].get('text')} {p['entry'].get('url', '')}"
    if "exceptionDetails" in p:
        return p["exceptionDetails"].get("text", "exception")
    return " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))


def problems(got: dict, n_svgs: int) -> list[str]:
    """What is wrong with a loaded report: an empty list for a good one."""
    out = [f"console error: {e}" for e in got["errors"]]
    out += [f"requested {u}" for u in got["requests"] if u != got["url"]
            and not u.startswith("data:")]
    if len(got["svgs"]) != n_svgs:
        out.append(f"{len(got['svgs'])} SVG plots, expected {n_svgs}")
    out += [f"plot {i} drawn at {s['w']:.0f}x{s['h']:.0f} px with {s['shapes']} shapes"
            for i, s in enumerate(got["svgs"]) if s["w"] < 1 or s["h"] < 1 or not s["shapes"]]
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def shots():
    d = os.environ.get("ATTNAD_REPORT_SHOTS")
    if d:
        Path(d).mkdir(parents=True, exist_ok=True)
    return Path(d) if d else None


def _detect_report(data: Path, model: Path, out_dir: Path) -> Path:
    rep = out_dir / "report.html"
    r = runner.invoke(app, ["detect", str(data), "-m", str(model), "-o",
                            str(out_dir / "scored.parquet"), "--explain", "2", "--report",
                            str(rep), "-q"])
    assert r.exit_code in (0, 1), r.output  # 1: a gate; none is set, but flags are expected
    return rep


def test_table_report_in_a_browser(browser, shots, tmp_path, csv_file, model_dir):
    rep = _detect_report(csv_file, model_dir, tmp_path)
    got = load(browser, rep, shots / "report_table.png" if shots else None)
    assert problems(got, n_svgs=1) == []
    assert got["svgs"][0]["w"] > 900  # the histogram fills the report's column
    assert got["title"] == "attnad report"


def test_time_series_report_in_a_browser(browser, shots, tmp_path, ts_setup):
    _, root, _, path, _ = ts_setup
    rep = _detect_report(path, root / "model", tmp_path)
    got = load(browser, rep, shots / "report_timeseries.png" if shots else None)
    assert problems(got, n_svgs=1 + 2 * 3) == []  # histogram + signals and scores per host


def test_the_browser_check_catches_a_broken_report(browser, tmp_path, csv_file, model_dir):
    """Self-check: a report with an external image, a hidden plot and a console error fails."""
    rep = _detect_report(csv_file, model_dir, tmp_path)
    bad = tmp_path / "bad.html"
    bad.write_text(rep.read_text().replace(
        "<body>", '<body><img src="https://example.com/x.png"><style>svg{display:none}</style>'
        '<script>console.error("planted")</script>', 1))
    found = problems(load(browser, bad), n_svgs=1)
    assert any(p == "requested https://example.com/x.png" for p in found), found
    assert any(p.startswith("plot 0 drawn at 0x0") for p in found), found
    assert any("planted" in p for p in found), found
