"""A real browser on the explorer: JupyterLab on a free local port, headless Chromium through Playwright.

Opens ``notebooks/09_interactive_explorer.py`` as a notebook (the project's ``.jupyter`` config makes
jupytext sources open as notebooks), runs all cells, checks that the widgets appear, clicks a top-5
class and types a class name, and checks that the figure changes within a few seconds each time.
Prints the update latencies; with ``PAPERLIB_SAVE_SCREENSHOT=1`` also saves them and the screenshot as
``figures/explorer_browser.{json,png}`` (the README's), otherwise into the test's temporary folder, so
that ``make test`` leaves the committed figures as they are.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the
``playwright`` package; skipped with the reason when either is missing. Deselect with
``-m 'not browser'``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from paperlib.core.paths import FIGURES_DIR, NOTEBOOKS_DIR, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("PAPERLIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK = "09_interactive_explorer.py"
TIMEOUT_UPDATE_S = 30.0  # about 1 s on a quiet 2-core CPU; the margin is for a loaded CI machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no Chromium browser found (install Debian's `chromium`; .ci/run does it when missing)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    tmp = tmp_path_factory.mktemp("lab")
    served = tmp / "notebooks"  # a copy: JupyterLab's autosave must not rewrite the sources
    served.mkdir()
    for src in NOTEBOOKS_DIR.glob("[0-9][0-9]_*"):
        if src.suffix in (".py", ".ipynb"):
            shutil.copy2(src, served / src.name)
    port, token = _free_port(), "paperlib-test"
    env = dict(os.environ)
    env.pop("PAPERLIB_HEADLESS", None)  # the widgets must appear
    env.update(
        JUPYTER_CONFIG_PATH=str(REPO_ROOT / ".jupyter"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),  # no user settings: the project's defaults only
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]),
        MPLBACKEND="Agg",
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--notebook-dir={served}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=served)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(360):
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("JupyterLab exited:\n" + (tmp / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 180 s:\n" + (tmp / "lab.log").read_text()[-3000:])
        yield {"base": base, "token": token}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_file_browser_lists_each_notebook_once_and_opens_sources_as_notebooks(lab):
    listing = _get(f"{lab['base']}/api/contents?token={lab['token']}")["content"]
    names = [e["name"] for e in listing if e["name"][:2].isdigit()]
    stems = [Path(n).stem for n in names]
    assert names and len(stems) == len(set(stems)), names
    assert all(n.endswith(".py") for n in names), names
    settings = _get(f"{lab['base']}/lab/api/settings/@jupyterlab/docmanager-extension:plugin?token={lab['token']}")
    viewers = settings["settings"].get("defaultViewers") or settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("python") == "Jupytext Notebook", viewers
    model = _get(f"{lab['base']}/api/contents/{NOTEBOOK}?type=notebook&token={lab['token']}")
    assert model["type"] == "notebook"


def _cell_errors(page) -> list[str]:
    """Tracebacks shown in the notebook. JupyterLab renders an error output under the stderr MIME type (there is
    no separate error type in the DOM), so stderr outputs are read and those that carry a traceback kept."""
    texts = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    return [t for t in texts if "Traceback" in t or "Error" in t]


def test_explorer_in_a_real_browser(lab, tmp_path):
    out = FIGURES_DIR if os.environ.get("PAPERLIB_SAVE_SCREENSHOT") == "1" else tmp_path
    from playwright.sync_api import sync_playwright

    t_start = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            user_data_dir=_tmpdir(),  # a fresh profile
            executable_path=CHROMIUM,
            headless=True,
            viewport={"width": 1400, "height": 1000},
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
            ],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?token={lab['token']}&reset")
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            # Start the kernel first (Run All before the kernel is up runs only the active cell): a first
            # visit may ask which kernel to start; take the preselected Python 3, as a user would.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                accept = page.locator(".jp-Dialog button.jp-mod-accept")
                if accept.count():
                    accept.first.click()
                if "| Idle" in page.locator("#jp-main-statusbar").inner_text():
                    break
                page.wait_for_timeout(500)
            else:
                pytest.fail("the kernel did not start within 180 s")
            panel = None
            for attempt in range(2):  # a Run All clicked while the kernel settles can run nothing: click it once more
                page.click(".lm-MenuBar-itemLabel:text-is('Run')")
                page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline and panel is None:
                    panel = page.query_selector(".paperlib-panel")
                    if _cell_errors(page):
                        break
                    page.wait_for_timeout(500)
                ran = page.locator(".jp-InputPrompt:has-text('[1]')").count()
                if panel is not None or ran:  # it ran (and failed or drew): no second click
                    break
            if panel is None:
                shot = Path(_tmpdir()) / "explorer_failure.png"
                page.screenshot(path=str(shot), full_page=True)
                errors = _cell_errors(page)
                raise AssertionError(f"no widget panel after Run All (screenshot {shot}); errors: {[e[-400:] for e in errors]}")
            t_widgets = time.perf_counter() - t_start
            page.wait_for_selector(".paperlib-panel .widget-html:has-text('drawn in')", timeout=60_000)
            img = page.locator(".paperlib-panel img.widget-image").first
            buttons = page.locator(".paperlib-panel .widget-toggle-buttons button")
            assert buttons.count() == 5, "the top-5 buttons should appear"
            assert page.locator(".paperlib-panel .widget-text input[list]").count() == 1
            assert page.locator(".paperlib-panel .widget-dropdown select").count() == 1

            def changed_after(action) -> float:
                before = img.get_attribute("src")
                t0 = time.perf_counter()
                action()
                try:
                    page.wait_for_function(
                        "([sel, old]) => { const e = document.querySelector(sel); return e && e.src !== old; }",
                        arg=[".paperlib-panel img.widget-image", before],
                        timeout=TIMEOUT_UPDATE_S * 1000,
                    )
                except Exception as err:  # playwright's TimeoutError: say what the panel showed
                    shot = Path(_tmpdir()) / "explorer_no_update.png"
                    page.screenshot(path=str(shot))
                    status = page.locator(".paperlib-panel .widget-html").first.inner_text()
                    raise AssertionError(
                        f"the figure did not change within {TIMEOUT_UPDATE_S} s (status: {status!r}; screenshot {shot})"
                    ) from err
                return time.perf_counter() - t0

            click_s = changed_after(lambda: buttons.nth(1).click())
            box = page.locator(".paperlib-panel .widget-text input[list]")

            def type_name():
                box.fill("tabby")
                box.press("Enter")

            type_s = changed_after(type_name)
            page.wait_for_selector(".paperlib-panel .widget-html:has-text('drawn in')")
            assert "Unknown" not in panel.inner_text()
            panel.scroll_into_view_if_needed()
            out.mkdir(exist_ok=True)
            page.screenshot(path=str(out / "explorer_browser.png"), full_page=False)
        finally:
            browser.close()
    total = time.perf_counter() - t_start
    (out / "explorer_browser.json").write_text(
        json.dumps(
            {
                "top5_click_to_new_figure_s": round(click_s, 2),
                "typed_class_to_new_figure_s": round(type_s, 2),
                "widgets_shown_after_s": round(t_widgets, 1),
                "browser_part_s": round(total, 1),
                "browser": "headless Chromium (Debian) through Playwright",
            },
            indent=2,
        )
    )
    print(
        f"\nexplorer in Chromium: top-5 click -> new figure {click_s:.2f} s; typed class -> new figure {type_s:.2f} s; "
        f"widgets shown {t_widgets:.0f} s after the browser started; whole browser test {total:.0f} s"
    )
    assert click_s < TIMEOUT_UPDATE_S and type_s < TIMEOUT_UPDATE_S


def _tmpdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="paperlib-chromium-")
