"""The decision report (report.html) in a real headless browser: one promotion that rolls back, one that promotes.

Each page is rendered by headless Chromium from the file the local runtime exported (no server, no network); the
DOM Chromium builds (`--dump-dom`) must show what an operator needs: the outcome, the reason, who approved, the
failed step and what was restored. A screenshot of each page is kept under `.local-runs/screenshots/` (path
printed; `pytest -s` shows it) for a person to look at.

Needs Chromium (`apt-get install chromium`); without it the tests skip and say so. `.ci/run` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from local.runtime import Decision, RunResult
from tests.conftest import ROOT
from tests.e2e.conftest import event, once_per_run, runtime_with, world

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / ".local-runs" / "screenshots"
WINDOW = (1200, 2000)
APPROVER = "Bob Chen"
COMMENT = "AUC up 1.1 points on the holdout"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    found = chromium()
    if found is None:
        pytest.skip("headless Chromium is not installed: `apt-get install chromium` (Debian/Ubuntu) to run this test")
    return found


class _VisibleText(HTMLParser):
    """The text a reader sees: everything outside <style>, <script>, <head>."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head", "title"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(" ".join(data.split()))


@dataclass(frozen=True)
class Rendered:
    dom: str
    screenshot: Path

    @property
    def text(self) -> str:
        parser = _VisibleText()
        parser.feed(self.dom)
        return " ".join(parser.parts)


def render(browser: str, page: Path, name: str) -> Rendered:
    """Chromium's DOM of `page` and a screenshot of it (SCREENSHOTS/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    url = page.resolve().as_uri()
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": "/dev/null"}
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        dump = subprocess.run(
            [*common, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=False, env=env
        )
        assert dump.returncode == 0, f"chromium --dump-dom failed ({dump.returncode}): {dump.stderr[-2000:]}"
        shot = subprocess.run(
            [*common, f"--screenshot={screenshot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert shot.returncode == 0, f"chromium --screenshot failed ({shot.returncode}): {shot.stderr[-2000:]}"
    assert screenshot.is_file(), f"chromium wrote no screenshot: {shot.stderr[-2000:]}"
    print(f"\nscreenshot of the {name} decision report: {screenshot}")
    return Rendered(dom=dump.stdout, screenshot=screenshot)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def assert_screenshot(rendered: Rendered) -> None:
    assert png_size(rendered.screenshot) == WINDOW
    # A blank page compresses to a few kilobytes; a rendered report is far larger.
    assert rendered.screenshot.stat().st_size > 30_000


def report_of(result: RunResult) -> tuple[Path, dict[str, Any]]:
    assert result.report is not None, f"the execution wrote no decision report ({result.status}: {result.cause})"
    return Path(result.report["html"]), json.loads(Path(result.report["json"]).read_text())


def run_once(synthesized: Path, tmp: Path, **options: Any) -> RunResult:
    """One promotion on its own runtime, stopped before the next one starts (the report files stay in `tmp`)."""
    with runtime_with(synthesized, tmp, world(), **options) as runtime:
        return runtime.run(event(), seed=True, decision=Decision.approve(APPROVER, COMMENT))


@pytest.fixture(scope="session")
def rolled_back(synthesized: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A promotion that fails at TriggerPipeline, after production was written, and is rolled back (once per run)."""
    return once_per_run(
        tmp_path_factory, "rolled-back", lambda folder: run_once(synthesized, folder, fail_at=["TriggerPipeline"])
    )


@pytest.fixture(scope="session")
def promoted(synthesized: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return once_per_run(tmp_path_factory, "promoted", lambda folder: run_once(synthesized, folder))


def test_a_rolled_back_promotion_reads_in_a_browser(browser: str, rolled_back: RunResult) -> None:
    assert rolled_back.outcome == "ROLLED_BACK", rolled_back.cause
    page, report = report_of(rolled_back)
    rendered = render(browser, page, "rolled-back")
    text = rendered.text

    assert "ROLLED_BACK" in text
    assert report["reason"] in text
    # Who approved, and why.
    assert APPROVER in text
    assert COMMENT in text
    # What failed: the error Step Functions caught.
    assert report["error"]["Error"] in text
    # What was restored: the rollback's own account, the release production went back to, the parameters.
    rollback = report["rollback"]
    assert rollback["restored"] is True
    assert rollback["reason"] in text
    assert report["backup"]["previous_release_id"] in text
    for name in rollback["parameters_restored"]:
        assert name in text, name
    assert_screenshot(rendered)


def test_a_rolled_back_report_names_the_failed_step(browser: str, rolled_back: RunResult) -> None:
    page, _ = report_of(rolled_back)
    assert "TriggerPipeline" in render(browser, page, "rolled-back-failed-step").text


def test_a_promoted_release_reads_in_a_browser(browser: str, promoted: RunResult) -> None:
    assert promoted.outcome == "PROMOTED", promoted.cause
    page, report = report_of(promoted)
    rendered = render(browser, page, "promoted")
    text = rendered.text

    assert "PROMOTED" in text
    assert report["reason"] in text
    assert APPROVER in text
    assert COMMENT in text
    assert report["release_id"] in text
    for name, value in report["candidate"]["hyperparameters"].items():
        assert name in text, name
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)  # the page shows 3.0 as 3
        assert shown in text, (name, value)
    assert "no rollback ran" in text
    assert_screenshot(rendered)
