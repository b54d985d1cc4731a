"""The HTML report is one self-contained file that headless Chromium (Debian's `chromium`) opens without a
console message, on a phone-sized and a desktop-sized window; screenshots are written under the test's tmp dir."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from drainage.reports.query import build_report
from drainage.reports.render_html import to_html
from drainage.reports.request import parse_request
from tests.report_helpers import D1, D3, build_history

CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(.*)")


def chromium() -> str:
    """Path of Chromium; skipped when absent outside CI, a failure in CI (DRAINAGE_CI=1; .ci/run installs it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("DRAINAGE_CI"):
            pytest.fail("chromium is not installed (apt-get install -y chromium); CI must run the browser test")
        pytest.skip("chromium is not installed: apt-get install -y chromium (set DRAINAGE_CI=1 to make this fail)")
    return path


def open_in_chromium(page: Path, screenshot: Path, size: str) -> list[str]:
    """Load `page` in headless Chromium, save a screenshot, return every console message it logged.

    The report has no script, so any console message at all (an error, a blocked fetch, a CSP violation) is a
    defect; Chromium's log does not say a message's level, so none is accepted.
    """
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--enable-logging=stderr", "--v=0", f"--user-data-dir={screenshot.parent / 'profile'}",
         f"--screenshot={screenshot}", f"--window-size={size}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.exists() and screenshot.stat().st_size > 5000, result.stderr[-2000:]
    print(f"screenshot: {screenshot}")
    return [m.group(1) for m in CONSOLE.finditer(result.stderr)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return build_history(tmp_path_factory.mktemp("history"))


@pytest.mark.parametrize("by", ["variant", pytest.param("day", marks=pytest.mark.slow)])  # a browser each
def test_the_html_report_opens_in_chromium_without_console_messages(history: Engine, tmp_path: Path,
                                                                     by: str) -> None:
    page = tmp_path / "report.html"
    page.write_text(to_html(build_report(history, parse_request(start=D1.isoformat(), end=D3.isoformat(), by=by))),
                    encoding="utf-8")
    for name, size in (("phone", "390,2600"), ("desktop", "1280,2000")):
        assert open_in_chromium(page, tmp_path / f"report-{by}-{name}.png", size) == []


def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The check above can fail: a page with an error and a blocked external fetch is caught."""
    page = tmp_path / "broken.html"
    html = to_html(build_report(build_history(tmp_path), parse_request(start=D1.isoformat(), end=D3.isoformat())))
    page.write_text(html.replace("</main>", '<img src="https://cdn.example.com/chart.png"></main>'), encoding="utf-8")
    messages = open_in_chromium(page, tmp_path / "broken.png", "390,800")
    assert any("Content Security Policy" in m and "cdn.example.com" in m for m in messages), messages


def test_the_html_is_self_contained_and_escapes_names(history: Engine, tmp_path: Path) -> None:
    html = to_html(build_report(history, parse_request(start=D1.isoformat(), end=D3.isoformat(), by="variant")))
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r"""\ssrc\s*=""", html)
    assert "default-src 'none'" in html and 'name="viewport"' in html
    assert html.count("<svg") == 1 and "Funnel per channel" in html and "spring &middot; social: CTR by variant" in html
    assert "too little data to tell" in html and "https://social.example.com/p1" in html
    from drainage.store.db import session
    from drainage.store.models import Delivery

    with session(history) as s:
        row = s.get(Delivery, 1)
        assert row is not None
        old = row.campaign
        row.campaign = "<b onmouseover=alert(1)>x</b>"
        s.commit()
        html = to_html(build_report(history, parse_request(start=D1.isoformat(), end=D3.isoformat(), by="campaign")))
        row.campaign = old
        s.commit()
    assert "<b onmouseover" not in html and "&lt;b onmouseover=alert(1)&gt;x&lt;/b&gt;" in html
