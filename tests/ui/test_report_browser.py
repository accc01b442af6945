"""The Report tab in a real browser, on the shipped models: every figure draws (the graphs as
SVG, offline), and a screenshot of the whole page goes to tests/artifacts/report.png."""
from __future__ import annotations

import pytest

from .test_e2e_browser import browser_page, screenshot, streamlit_server, wait_idle


@pytest.fixture
def shipped_server(tmp_path):
    with streamlit_server(tmp_path / "server.log", GENAPP_RUNS_DIR=str(tmp_path / "runs")) as url:
        yield url


def test_the_report_draws_the_seeds_figures(shipped_server):
    with browser_page(shipped_server, timeout_ms=180_000) as page:
        page.get_by_role("tab", name="Report").click()
        wait_idle(page)
        headings = page.locator("h4").all_inner_texts()
        assert [h.split(" ·")[0] for h in headings] == [f"Fig. {n}" for n in range(1, 16)]
        page.wait_for_function("document.querySelectorAll('[data-testid=stGraphVizChart] svg').length >= 3")
        graphs = page.locator("[data-testid=stGraphVizChart] svg").all()
        assert all("784" in g.inner_html() for g in graphs)  # drawn with the models' sizes
        assert page.locator("[data-testid=stException]").count() == 0
        loaded = page.evaluate("[...document.querySelectorAll('[data-testid=stImage] img')]"
                               ".filter(i => i.complete && i.naturalWidth > 0).length")
        assert loaded >= 30  # Fig. 1, 2, 6, 7, 8, 10, 11, 12 (and 15 with the flow's history)
        screenshot(page, "report")
