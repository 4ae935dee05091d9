"""The explorers in a real JupyterLab, in headless Chromium: run all cells, move the sliders, see the plot change
(notebook 02's sampler explorer: eta and steps; notebook 01's forward explorer: t; one slider of the explorer
of each of notebooks 03-06).

Starts JupyterLab on 127.0.0.1 (free port, no token, throwaway config/runtime/settings/workspace
folders, a copy of the repository in a temporary folder so nothing is saved into it),
opens NOTEBOOK in Debian's chromium driven by Playwright, runs all cells, then in the first widget
output that has a slider described `eta` and one described `steps` (an explorer's `.widget()`)
moves each with ArrowRight and checks that the image changed and that the slider readouts and the
explorer's status line show the new values.  Screenshots of that cell go to a folder printed at the
start of the test.  Server and browser are stopped even when the test fails.

Needs `pip install playwright` (the test extra) and a Chromium: $CHROMIUM, else the system's
(Debian's chromium, Ubuntu's chromium-browser, the snap), else Playwright's own (`python -m playwright
install chromium`).  `make test` first runs tests/browser/install_chromium.sh, which installs the
system package only where it can (root and apt-get) and says so.  Without a browser the test is
skipped, and tests/browser/conftest.py ends the run with one loud line saying how to enable it;
with DIFFEDU_REQUIRE_BROWSER=1 (as .ci/run sets) a missing piece fails the test instead.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "02_ddim_sigma_eta.ipynb"     # the notebook under test
COPY_IGNORE = (".git", ".venv", "venv", ".hypothesis", "runs", "build", "dist", "*.egg-info", "__pycache__",
               ".ipynb_checkpoints", ".pytest_cache")
RUN_ALL_TIMEOUT = 900.0      # seconds for Run All Cells: notebook 02 runs 3-4 min alone on 2 CPU cores, longer when shared
SCREENSHOTS = Path(os.environ.get("DIFFEDU_SCREENSHOTS", Path(tempfile.gettempdir()) / "diffedu-browser-screenshots"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# JupyterLab settings: no news/update toast over the page, no autosave, every cell in the DOM
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


pytestmark = pytest.mark.slow


SKIPPED: list[str] = []       # why the browser test was skipped (tests/browser/conftest.py prints it at the end)
HOW = ("set CHROMIUM=/path/to/chromium, or run `.venv/bin/python -m playwright install chromium`, "
       "or (root) sh tests/browser/install_chromium.sh")
SYSTEM_CHROMIUMS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/lib/chromium-browser/chromium-browser",
                    "/usr/bin/chromium-browser", "/snap/bin/chromium")


def _missing(reason):
    if os.environ.get("DIFFEDU_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (DIFFEDU_REQUIRE_BROWSER=1 makes this a failure)")
    SKIPPED.append(reason)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """$CHROMIUM, else the system's Chromium (Debian's binary behind its /usr/bin/chromium wrapper first), else
    None: Playwright's own browser, if it is installed."""
    chosen = os.environ.get("CHROMIUM")
    if chosen:
        if not os.access(chosen, os.X_OK):
            _missing(f"CHROMIUM={chosen} is not an executable file; {HOW}")
        return chosen
    for p in SYSTEM_CHROMIUMS:
        if os.access(p, os.X_OK):
            return p
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Lab:
    """A JupyterLab server in its own process group, serving a throwaway copy of a folder."""

    def __init__(self, tmp: Path):
        self.tmp, self.root = tmp, tmp / "root"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "jupyterlab.log"
        self.proc = None

    def start(self, timeout: float = 90.0) -> None:
        settings = self.tmp / "settings"
        for name, value in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.tmp / "config"), JUPYTER_RUNTIME_DIR=str(self.tmp / "runtime"),
                   JUPYTER_DATA_DIR=str(self.tmp / "data"), JUPYTER_PLATFORM_DIRS="1", IPYTHONDIR=str(self.tmp / "ipython"),
                   MPLBACKEND="Agg", PYTHONHASHSEED="0")
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
               f"--ServerApp.root_dir={self.root}", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={self.tmp / 'workspaces'}", "--LabApp.news_url=",
               "--ServerApp.disable_check_xsrf=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                get_json(f"{self.url}/api/status", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within {timeout:.0f} s:\n{self.tail()}")

    def kernels(self) -> list:
        return get_json(f"{self.url}/api/kernels")

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the server (it shuts its kernels down), then SIGKILL to its process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)      # the group started for this server only
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()


@pytest.fixture
def lab(tmp_path, request):
    notebook = getattr(request, "param", NOTEBOOK)      # parametrize("lab", [path], indirect=True) for another
    if not notebook.exists():
        pytest.fail(f"{notebook} does not exist: build it with `make notebooks`")
    # a copy of the repository (a few MB): the notebook finds ../benchmarks/results etc. as in the
    # repository, and running its cells writes nothing into the repository
    shutil.copytree(ROOT, tmp_path / "root", ignore=shutil.ignore_patterns(*COPY_IGNORE))
    server = Lab(tmp_path)
    try:
        server.start()
        server.notebook = notebook.relative_to(ROOT).as_posix()
        yield server
    finally:
        server.stop()


@pytest.fixture
def page():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install playwright (the test extra)")
    exe = chromium_path()
    pw = sync_playwright().start()
    browser = None
    if exe is None and not os.access(pw.chromium.executable_path, os.X_OK):
        pw.stop()
        _missing(f"no Chromium found (looked at $CHROMIUM, {', '.join(SYSTEM_CHROMIUMS)} and Playwright's own); {HOW}")
    try:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        yield pg
    finally:
        if browser is not None:
            browser.close()
        pw.stop()


def wait_for_kernel(lab: Lab, timeout: float = 90.0) -> None:
    """Until the server has a kernel that is idle and connected (the toolbar can say idle before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ks = lab.kernels()
        if any(k.get("execution_state") == "idle" and k.get("connections", 0) > 0 for k in ks):
            return
        time.sleep(0.3)
    raise AssertionError(f"no idle, connected kernel after {timeout:.0f} s: {lab.kernels()}\n{lab.tail()}")


def prompts(page) -> list[str]:
    return page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


# JupyterLab renders an error output with the stderr renderer (its traceback as text)
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def error_outputs(page):
    """Outputs of cells that raised: stderr outputs holding a Python traceback."""
    return page.locator(STDERR).filter(has_text="Traceback (most recent call last)")


def run_all(page, lab: Lab, timeout: float = RUN_ALL_TIMEOUT) -> None:
    """Run > Run All Cells, retried when no prompt changes (the kernel-not-ready race), then wait until done."""
    before = prompts(page)
    for attempt in range(4):
        wait_for_kernel(lab)
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and prompts(page) == before:
            time.sleep(0.2)
        if prompts(page) != before:
            break
        page.keyboard.press("Escape")
    else:
        raise AssertionError(f"Run All Cells changed no prompt in 4 tries; prompts {before}\n{lab.tail()}")
    # Done when every prompt has a number.  A cell that raises stops Run All: the cells after it
    # keep an empty prompt, so an error output, or no cell running ([*]) while some were not run,
    # ends the wait at once with the error.
    deadline = time.monotonic() + timeout
    stalled_since = None
    while time.monotonic() < deadline:
        ps = [p.strip() for p in prompts(page)]
        if ps and all(re.fullmatch(r"\[\d+\]:", p) for p in ps):
            return
        if error_outputs(page).count():
            raise AssertionError("a cell raised during Run All Cells:\n" + "\n".join(error_outputs(page).all_inner_texts()))
        if "[*]:" in ps:
            stalled_since = None
        elif stalled_since is None:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > 20:
            stderr = page.locator(STDERR).all_inner_texts()
            raise AssertionError(f"Run All Cells stopped with cells not run and none running: {ps}\n"
                                 + "\n".join(stderr) + f"\n{lab.tail()}")
        time.sleep(0.3)
    raise AssertionError(f"cells still running or not run after {timeout:.0f} s: {prompts(page)}\n{lab.tail()}")


def labelled(page, label: str):
    """A locator matching widget description labels that read exactly `label`."""
    return page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$"))


def slider(explorer, label: str):
    """The slider widget described `label` inside the explorer's output."""
    return explorer.locator(".widget-slider").filter(has=labelled(explorer.page, label)).first


def readout(explorer, label: str) -> str:
    return slider(explorer, label).locator(".widget-readout").inner_text().strip()


def move(page, explorer, label: str):
    """Focus a slider's handle, press ArrowRight once, wait for a new image;
    returns (the slider's readout, screenshot of the image before, after)."""
    img = explorer.locator("img.widget-image").first
    old_src, old_png = img.get_attribute("src"), img.screenshot()
    handle = slider(explorer, label).locator(".noUi-handle[role=slider]")
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.getAttribute('src') !== old", arg=[img.element_handle(), old_src],
                           timeout=60_000)
    page.wait_for_timeout(200)                   # the browser decodes and lays out the new image
    return readout(explorer, label), old_png, img.screenshot()


@contextlib.contextmanager
def notebook_run(lab, page, capsys):
    """Open lab.notebook, Run All Cells, check no cell raised; yields (screenshot folder, Run All seconds).
    A failure inside leaves a page screenshot and the JupyterLab log in the folder; success prints the time."""
    shots = SCREENSHOTS / Path(lab.notebook).stem
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with capsys.disabled():
        print(f"\n[browser test] screenshots of {lab.notebook}: {shots}")
    t0 = time.monotonic()
    try:
        page.goto(f"{lab.url}/lab/tree/{lab.notebook}")
        page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for()
        run_all(page, lab)
        t_run = time.monotonic() - t0
        errors = error_outputs(page)
        assert errors.count() == 0, "a cell raised:\n" + "\n".join(errors.all_inner_texts())
        yield shots, t_run
    except BaseException as err:
        try:
            page.screenshot(path=str(shots / "failure_page.png"))
        except Exception:
            pass
        (shots / "failure.txt").write_text(f"{type(err).__name__}: {err}\n\nJupyterLab log:\n{lab.tail()}\n")
        with capsys.disabled():
            print(f"[browser test] failed after {time.monotonic() - t0:.1f} s; the error and the JupyterLab log "
                  f"are in {shots / 'failure.txt'}")
        raise
    with capsys.disabled():
        print(f"[browser test] {lab.notebook}: passed in {time.monotonic() - t0:.1f} s after server start "
              f"(Run All Cells {t_run:.1f} s); screenshots in {shots}")


def widget_with_sliders(page, *labels):
    """The first widget output holding a slider described by each of `labels` (an explorer's .widget())."""
    out = page.locator(".jp-OutputArea-output")
    for label in labels:
        out = out.filter(has=page.locator(".widget-slider").filter(has=labelled(page, label)))
    return out.first


def test_explorer_in_jupyterlab(lab, page, capsys):
    with notebook_run(lab, page, capsys) as (shots, _):
        explorer = widget_with_sliders(page, "eta", "steps")
        assert explorer.count() == 1, "no widget output with sliders described 'eta' and 'steps'"
        cell = page.locator(".jp-CodeCell").filter(has=explorer).first
        cell.scroll_into_view_if_needed()
        status = explorer.locator(".widget-html").first
        page.wait_for_function("el => el.innerText.includes('NFE=')", arg=status.element_handle())
        cell.screenshot(path=str(shots / "1_after_run_all.png"))
        eta0, steps0 = readout(explorer, "eta"), readout(explorer, "steps")
        assert f"eta={eta0}" in status.inner_text() and f"steps={steps0} " in status.inner_text(), status.inner_text()

        eta1, before, after = move(page, explorer, "eta")
        assert float(eta1) == pytest.approx(float(eta0) + 0.1), (eta0, eta1)
        assert before != after, "the plot did not change when eta moved"
        page.wait_for_function("([el, s]) => el.innerText.includes(s)", arg=[status.element_handle(), f"eta={eta1}"])
        assert f"steps={steps0} " in status.inner_text(), status.inner_text()
        cell.screenshot(path=str(shots / "2_eta_moved.png"))

        steps1, before, after = move(page, explorer, "steps")
        choices = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]        # diffedu.widgets.STEP_CHOICES
        assert int(steps1) == choices[choices.index(int(steps0)) + 1], (steps0, steps1)
        assert before != after, "the plot did not change when steps moved"
        page.wait_for_function("([el, s]) => el.innerText.includes(s)",
                               arg=[status.element_handle(), f"steps={steps1} "])
        assert f"eta={eta1}" in status.inner_text(), status.inner_text()
        assert readout(explorer, "eta") == eta1
        cell.screenshot(path=str(shots / "3_steps_moved.png"))


@pytest.mark.parametrize("lab", [ROOT / "notebooks" / "01_ddpm_forward_and_posterior.ipynb"], indirect=True)
def test_forward_explorer_in_notebook_01(lab, page, capsys):
    """Notebook 01's ForwardExplorer: one step of the t slider (T/100 = 10) gives a new image and status line."""
    with notebook_run(lab, page, capsys) as (shots, _):
        explorer = widget_with_sliders(page, "t")
        assert explorer.count() == 1, "no widget output with a slider described 't'"
        cell = page.locator(".jp-CodeCell").filter(has=explorer).first
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=str(shots / "1_after_run_all.png"))
        t0 = readout(explorer, "t")
        t1, before, after = move(page, explorer, "t")
        assert int(t1) == int(t0) + 10, (t0, t1)
        assert before != after, "the figure did not change when t moved"
        status = explorer.locator(".widget-html").first
        page.wait_for_function("el => el.innerText.includes('computed in')", arg=status.element_handle())
        cell.screenshot(path=str(shots / "2_t_moved.png"))


# notebook, the sliders that single out its explorer's output, the slider moved, the readout expected after one
# ArrowRight from the notebook's starting value (as text), and what the status line then says
SLIDER_CASES = [
    ("03_estimate_correct.ipynb", ("eta", "steps"), "eta", "0.60", "eta=0.60"),
    ("04_edm_pf_ode.ipynb", ("rho", "S_churn"), "steps", "19", "computed in"),
    ("05_train_and_evaluate.ipynb", ("step",), "step", None, "computed in"),
    ("06_guidance.ipynb", ("w",), "w", None, "computed in"),
]


@pytest.mark.parametrize("lab, labels, label, expected, status_text",
                         [(ROOT / "notebooks" / nb, *rest) for nb, *rest in SLIDER_CASES],
                         indirect=["lab"], ids=[nb.split("_")[0] for nb, *_ in SLIDER_CASES])
def test_a_slider_moves_in_notebooks_03_to_06(lab, page, capsys, labels, label, expected, status_text):
    """Every later notebook's explorer answers its slider: one ArrowRight gives a new readout and a new figure.
    Notebook 05's snapshot slider starts at the last snapshot, so it is moved back with ArrowLeft first."""
    with notebook_run(lab, page, capsys) as (shots, _):
        explorer = widget_with_sliders(page, *labels)
        assert explorer.count() == 1, f"no widget output with sliders described {labels}"
        cell = page.locator(".jp-CodeCell").filter(has=explorer).first
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=str(shots / "1_after_run_all.png"))
        before_value = readout(explorer, label)
        if label == "step":                         # at the last snapshot: step back once, then forward again
            handle = slider(explorer, label).locator(".noUi-handle[role=slider]")
            img = explorer.locator("img.widget-image").first
            old_src = img.get_attribute("src")
            handle.focus()
            handle.press("ArrowLeft")
            page.wait_for_function("([el, old]) => el.getAttribute('src') !== old", arg=[img.element_handle(), old_src],
                                   timeout=60_000)
            assert readout(explorer, label) != before_value
            expected, before_value = before_value, readout(explorer, label)
        value, before, after = move(page, explorer, label)
        assert value != before_value, f"the {label} readout stayed at {value}"
        if expected is not None:
            assert value == expected, (before_value, value)
        assert before != after, f"the figure did not change when {label} moved"
        if status_text is not None:
            text = explorer.locator(".widget-html").first
            page.wait_for_function("([el, s]) => el.innerText.includes(s)", arg=[text.element_handle(), status_text])
        cell.screenshot(path=str(shots / f"2_{label}_moved.png"))
