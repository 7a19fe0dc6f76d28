"""The console's graph template, quartet_graph (quartet.lib), rendered by Debian's Prometheus and drawn in a real
browser: every line it is given is drawn, in the order given, however many; what is not a line stops the page
with the template's error rather than dropping out of the graph."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from quartet_shared.net import free_port
from quartet_tools.metrics import CONSOLES, NativePrometheus

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.integration

# Eleven lines: past the three the template once drew, and past arg9, where the keys' string order (arg10 < arg4)
# is not the order given.
LINES = [(f"vector({n})", f"line {n}") for n in range(1, 12)]


def graph_console(lines: str) -> str:
    """A console of one quartet_graph, with the page head the Quartet console uses."""
    return f"""{{{{ template "quartet_head" . }}}}
{{{{ template "quartet_graph" (args "g" "Eleven lines" "Value" "count"
{lines}) }}}}
</body></html>
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativePrometheus]:
    """Debian's Prometheus serving the repository's consoles and two of the test's own."""
    consoles = tmp_path_factory.mktemp("consoles")
    shutil.copytree(CONSOLES, consoles, dirs_exist_ok=True)
    drawn = "\n".join(f'  (args "{expr}" "{name}")' for expr, name in LINES)
    (consoles / "eleven.html").write_text(graph_console(drawn))
    (consoles / "not_a_line.html").write_text(graph_console('  (args "vector(1)" "line 1") "vector(2)"'))
    server = NativePrometheus("prometheus", free_port(), tmp_path_factory.mktemp("prometheus"), consoles=consoles)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_every_line_given_is_in_the_page_and_drawn_in_the_order_given(
    prometheus: NativePrometheus, chromium: Browser
) -> None:
    page = httpx.get(f"{prometheus.url}/consoles/eleven.html", timeout=10)
    assert page.status_code == 200, page.text[-2000:]
    for expr, name in LINES:
        assert f'expr: "{expr}", name: "{name}"' in page.text
    browser = chromium.new_page()
    errors: list[str] = []
    browser.on("pageerror", lambda error: errors.append(str(error)))
    browser.goto(f"{prometheus.url}/consoles/eleven.html")
    legend = browser.locator("#g .rickshaw_legend .label")
    legend.nth(len(LINES) - 1).wait_for(state="attached", timeout=30_000)
    # Rickshaw's legend lists the series last first.
    assert legend.all_inner_texts()[::-1] == [name for _, name in LINES]
    assert browser.locator("#g svg path.path").count() == len(LINES)
    assert errors == []
    browser.close()


def test_an_argument_that_is_not_a_line_is_refused_with_the_templates_error(prometheus: NativePrometheus) -> None:
    page = httpx.get(f"{prometheus.url}/consoles/not_a_line.html", timeout=10)
    assert page.status_code == 500
    assert "quartet_graph" in page.text and "arg0" in page.text
