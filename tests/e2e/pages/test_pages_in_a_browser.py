"""What a person sees, in a real browser (Playwright driving Debian's chromium): report.html of the session's
trained demo run, and the MLflow UI on that run."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import mlflow
import pytest

from classwise.ablation.executors.ray import tracking_server

CHROMIUM = os.environ.get("CLASSWISE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("CLASSWISE_SCREENSHOTS")  # a folder: keep the screenshots there (docs/ uses them)
# As root in a container, with no network: no sandbox, and nothing that calls out.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the test extra: "
                                                                        "pip install -e '.[test]'")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does), or set CLASSWISE_CHROMIUM")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def _page(browser, tmp_path, width=1366, height=860):
    context = browser.new_context(viewport={"width": width, "height": height})
    return context.new_page()


def _close_the_assistant(page) -> None:
    """MLflow 3.17 opens its assistant panel beside a run on a first visit; a person closes it."""
    header = page.locator("text=MLflow Assistant")
    if header.count():
        buttons = header.first.locator("xpath=ancestor::div[.//button][1]").locator("button")
        if buttons.count():
            buttons.last.click()


def _shot(page, tmp_path: Path, name: str, full_page: bool = False) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / name)
    return path


def test_report_page_shows_weak_class_cards_a_sortable_table_and_no_broken_image(browser, trained_project, tmp_path):
    project, proc = trained_project
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = project / "data" / "08_reporting" / "report.html"
    page = _page(browser, tmp_path)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    assert page.title().startswith("Classwise report: preact_resnet18")
    heading = page.locator("h2#weak").inner_text()
    cards = page.locator("article.card")
    assert re.match(r"(Weak classes: F1 under 0.5 on val \((\d+)\)|No class under F1 0.5 on val; the three weakest)",
                    heading), heading
    expected = int(re.search(r"\((\d+)", heading).group(1)) if heading.startswith("Weak") else 3
    assert cards.count() == min(expected, 24) and cards.count() > 0
    assert cards.first.locator("h3").inner_text() in page.locator("#per-class tbody tr").first.inner_text()
    # Every image decoded (a broken one has naturalWidth 0), and nothing was fetched from anywhere.
    sizes = page.eval_on_selector_all("img", "images => images.map(i => i.complete && i.naturalWidth)")
    assert sizes and all(sizes), sizes
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    # Readable on a laptop: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    _shot(page, tmp_path, "report_top.png")
    # The table sorts by a click: F1 descending on the second click.
    f1 = page.locator("#per-class th", has_text=re.compile(r"^f1$"))
    f1.click()
    f1.click()
    values = [float(v) for v in page.eval_on_selector_all(
        "#per-class tbody tr", "rows => rows.map(r => r.cells[2].dataset.v)")]
    assert values == sorted(values, reverse=True) and len(values) == 3 * 10
    page.locator("article.card").first.scroll_into_view_if_needed()
    _shot(page, tmp_path, "report_cards.png")


def test_the_console_link_opens_the_run_in_model_training_with_the_learning_curves_first(browser, trained_project,
                                                                                          tmp_path):
    project, proc = trained_project
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise")
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    (run,) = client.search_runs([experiment.experiment_id])
    assert {"per_class/0.val_f1", "per_class/9.test_recall"} <= set(run.data.metrics)  # class, then subset
    link = re.search(r"http://127\.0\.0\.1:5000(/#/experiments/\S+)", proc.stdout + proc.stderr).group(1)
    with tracking_server(project, None) as url:
        page = _page(browser, tmp_path)
        page.goto(url + link)
        page.wait_for_selector("text=About this run", timeout=60_000)
        _close_the_assistant(page)
        sidebar = page.inner_text("nav") if page.locator("nav").count() else page.inner_text("body")
        assert "Evaluation runs" not in sidebar and "Model registry" in page.inner_text("body")  # not the GenAI view
        _shot(page, tmp_path, "mlflow_run.png")
        page.get_by_role("tab", name="Model metrics").click()
        page.wait_for_selector("text=train_loss", timeout=60_000)
        page.wait_for_selector("text=Step", timeout=60_000)  # the charts' x axis: the curves are drawn
        text = page.inner_text("body")
        charts = text[text.index("Auto-refresh"):]
        sections = [name for name in ("curves", "data", "final", "per_class", "split") if f"\n{name}\n" in charts]
        assert sections[0] == "curves", charts[:500]
        assert sorted(sections, key=lambda n: charts.index(f"\n{n}\n")) == sections == sorted(sections)  # curves first, the rest after
        _shot(page, tmp_path, "mlflow_run_metrics.png")
