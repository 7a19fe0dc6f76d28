"""The report: its summary for the terminal and its self-contained HTML page."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from simulator.domain.report import RunReport
from simulator.domain.stats import percentiles
from simulator.render import render_html, write_html

from tests.services.simulator.fakes import report


def test_the_summary_gives_the_verdict_counts_and_every_check() -> None:
    text = report().summary()
    assert 'Quartet simulation "fake" (seed 1, plan ffffffffffff): PASSED' in text
    assert "20 submitted" in text and "lost 0, doubled 0" in text
    assert "1 in dead-letter topics (100 % of accepted)" in text
    assert "kill_worker×1, broker_restart×1" in text
    assert "latency (submit → result): p50" in text
    assert text.count("[ok  ]") == 8
    assert "anomalies: lost 0, duplicated 0, unexpected 0, aborted read 0 (of 0 aborted probes), out of order 0" in text
    # kill at 3 s: lag 6 at 4 s, back to 3 at 5 s; the broker at 5 s: unreadable at 10 s, 0 at 11 s; the rest calm.
    assert "recovery (lag back to its level before the fault): p50 2.0 s, max 6.0 s over 4 fault(s)" in text
    assert "large results (planning): 2 submitted, 2 accepted, 2 completed; lost 0, doubled 0" in text
    assert "large results (training): 1 submitted, 1 accepted, 1 completed; lost 0, doubled 0" in text


def test_the_summary_gives_the_latency_outside_the_faults_windows_when_there_is_one() -> None:
    calm = percentiles([0.5, 1.0, 1.5])
    assert "outside the faults' windows" not in report().summary()
    text = report().model_copy(update={"latency_outside_faults": calm}).summary()
    assert "latency outside the faults' windows (3 jobs): p50 1.000 s, p95 1.450 s, p99 1.490 s" in text


def test_a_failed_run_says_so_and_names_what_was_lost() -> None:
    text = report(passed=False).summary()
    assert "FAILED" in text
    assert "[FAIL] no accepted job lost" in text
    assert "lost (first 1): j0" in text


@pytest.mark.slow
def test_the_html_page_embeds_four_plots_and_escapes_text(tmp_path: Path) -> None:
    page = render_html(report())
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 4
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "&lt;note&gt;" in page and "<note>" not in page
    assert "kill_worker" in page and "broker_restart" in page
    assert "<h3>Recovery</h3>" in page and "recovery p50" in page and "aborted reads" in page
    assert "<td>planning, large results</td>" in page and "<td>training, large results</td>" in page
    # Self-contained: nothing to fetch.
    assert "<script" not in page and 'src="http' not in page and "<link" not in page
    path = write_html(report(passed=False), tmp_path / "r.html")
    assert "FAILED" in path.read_text()


def test_the_json_report_round_trips() -> None:
    original = report()
    again = RunReport.model_validate_json(original.model_dump_json())
    assert again == original and again.passed
