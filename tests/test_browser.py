"""The latent explorer, live, in a real browser: JupyterLab driven by headless Chromium.

Starts JupyterLab on 127.0.0.1 (a free port, a random token, everything it writes kept in a
temporary folder: settings, workspaces, runtime files), opens a copy of
notebooks/06_latent_explorer.ipynb with its outputs cleared (the repository's notebook is never
opened, so it can never be saved over), runs all cells, then presses arrow keys on a latent
slider and on the interpolation slider and checks that the pictures' *pixels* change (each
picture is drawn to a canvas in the page). This is what a student does, end to end: kernel,
widget messages, front end.

Needs Debian's Chromium (``apt-get install chromium``) and Python Playwright; skipped without
them. Playwright is launched with ``executable_path``; ``playwright install`` (which downloads
browsers) is never needed.

Screenshots go to tests/artifacts/ (not committed). ``VAELIB_UPDATE_SCREENSHOT=1 pytest
tests/test_browser.py`` also refreshes docs/explorer.png, the picture in the README.
"""

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_latent_explorer.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_S = 120  # for the server to start, and for the notebook to run in the browser's kernel

sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

# JupyterLab settings for a test: no news toast, and every cell in the page (with windowed
# rendering, cells scrolled out of view are not in the DOM).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
}

# Draw an <img> to a canvas and read its pixels back (RGBA bytes). The image's blob: URL
# changes on every update, so comparing src would prove nothing; the pixels must differ.
READ_PIXELS = """async (img) => {
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    return [canvas.width, canvas.height, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
}"""

# Record, in the page's own clock, each key press and each change of an <img>'s src (every
# update of an Image widget sets a new blob: URL).
WATCH_SRC = """(img) => {
    window.vaelibKeys = [];
    window.vaelibSrcChanges = [];
    document.addEventListener("keydown", () => window.vaelibKeys.push(performance.now()), true);
    new MutationObserver(() => window.vaelibSrcChanges.push(performance.now()))
        .observe(img, {attributes: true, attributeFilter: ["src"]});
}"""

# The part of a widget box that has content (the box itself spans the whole output area).
CONTENT_CLIP = """(box) => {
    const rects = Array.from(box.querySelectorAll("img, .widget-label, .widget-readout, .widget-html-content, .noUi-target"))
        .map(node => node.getBoundingClientRect()).filter(rect => rect.width > 0 && rect.height > 0);
    const left = Math.min(...rects.map(r => r.left)), top = Math.min(...rects.map(r => r.top));
    const right = Math.max(...rects.map(r => r.right)), bottom = Math.max(...rects.map(r => r.bottom));
    return {x: left - 8, y: top - 8, width: right - left + 16, height: bottom - top + 16};
}"""

NOTEBOOK_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"""() => {{
    const panel = {NOTEBOOK_PANEL};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && panel.sessionContext.isReady && kernel.status === "idle";
}}"""
ALL_CELLS_RUN = f"""() => {{
    const panel = {NOTEBOOK_PANEL};
    const cells = panel.content.widgets.filter(cell => cell.model.type === "code");
    return cells.length > 0 && cells.every(cell => cell.model.executionCount !== null)
        && panel.sessionContext.session.kernel.status === "idle";
}}"""
ERRORS = f"""() => {{
    const panel = {NOTEBOOK_PANEL};
    return Array.from(panel.node.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).map(node => node.innerText);
}}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_copy(source, target):
    """Copy a notebook without its outputs and stored widget state, so all the browser shows is fresh."""
    notebook = json.loads(source.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"].pop("widgets", None)
    target.write_text(json.dumps(notebook, indent=1))


def stop(process, grace_s=15):
    """Ask the server (and through it, its kernels) to stop; kill its process group if it will not."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # Jupyter's clean shutdown (SIGINT twice skips the prompt)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the server's own group: leftover kernels, if any
    except ProcessLookupError:
        pass
    process.wait(5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a temporary folder with a clean copy of the notebook."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    root.mkdir()
    clean_copy(NOTEBOOK, root / NOTEBOOK.name)
    for name, values in LAB_SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(home / "server.log", "w")
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{(home / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer in {TIMEOUT_S} s:\n{(home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.25)
        yield {"url": url, "token": token, "log": home / "server.log"}
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def read_pixels(locator, attempts=5):
    # Each Image widget update swaps the <img>'s blob: URL and revokes the old one; an image read
    # during the swap fails to decode ("EncodingError"), and the next read gets the new picture.
    for attempt in range(attempts):
        try:
            width, height, rgba = locator.evaluate(READ_PIXELS)
            break
        except sync_api.Error as e:
            if "cannot be decoded" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.1)
    assert width > 0 and height > 0 and len(rgba) == width * height * 4
    return rgba


def wait_until_changed(locator, before, timeout_s=10):
    """Pixels of an <img> once they differ from ``before`` (the kernel answers each key press)."""
    deadline = time.monotonic() + timeout_s
    while True:
        after = read_pixels(locator)
        if after != before or time.monotonic() > deadline:
            return after
        time.sleep(0.1)


def screenshot(page, box, path):
    """Save a picture of the widget ``box``, cropped to its content."""
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(path), clip=box.evaluate(CONTENT_CLIP))


def press(handle, key, times):
    handle.focus()
    for _ in range(times):
        handle.press(key)


def key_to_picture_ms(page, image, handle, presses=10):
    """Milliseconds from a key press on a slider to the new picture in the page, one press at a time."""
    image.evaluate(WATCH_SRC)
    handle.focus()
    times = []
    for i in range(presses):
        handle.press("ArrowLeft")
        page.wait_for_function(f"window.vaelibSrcChanges.length > {i}", timeout=10_000)
        times.append(page.evaluate(f"window.vaelibSrcChanges[{i}] - window.vaelibKeys[{i}]"))
    return sorted(times)


def test_latent_explorer_live_in_jupyterlab(lab, browser):
    notebook_hash = hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(TIMEOUT_S * 1000)
    start = time.monotonic()
    try:
        page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK.name}?token={lab['token']}")
        page.wait_for_function(KERNEL_IDLE)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(ALL_CELLS_RUN, polling=250)
        assert page.evaluate(ERRORS) == [], "a cell failed or wrote to stderr"

        # 1. A latent slider of the 2-D explorer, moved with the keyboard.
        explorer = page.locator(".vaelib-latent-sliders").first
        explorer.scroll_into_view_if_needed()
        digit, latent_map = explorer.locator("img.vaelib-digit"), explorer.locator("img.vaelib-map")
        digit_before, map_before = read_pixels(digit), read_pixels(latent_map)
        assert len(digit_before) == 140 * 140 * 4 and len(set(digit_before)) > 2  # a real picture, not blank
        readout = explorer.locator(".widget-readout").first
        value_before = readout.inner_text()
        press(explorer.locator(".widget-slider .noUi-handle").first, "ArrowRight", 8)
        assert wait_until_changed(digit, digit_before) != digit_before, "the decoded digit did not change"
        assert wait_until_changed(latent_map, map_before) != map_before, "the marker on the map did not move"
        assert readout.inner_text() != value_before
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot(page, explorer, ARTIFACTS / "explorer.png")
        latency = key_to_picture_ms(page, digit, explorer.locator(".widget-slider .noUi-handle").first)
        print(f"key press -> new digit in the page: median {latency[len(latency) // 2]:.0f} ms, "
              f"max {latency[-1]:.0f} ms ({len(latency)} presses)")

        # 2. The interpolation's t slider: both models' pictures change.
        walk = page.locator(".vaelib-interpolation").first
        walk.scroll_into_view_if_needed()
        pictures = walk.locator("img.vaelib-digit")
        assert pictures.count() == 2
        before = [read_pixels(pictures.nth(i)) for i in range(2)]
        press(walk.locator(".vaelib-t .noUi-handle"), "ArrowRight", 10)
        for i in range(2):
            assert wait_until_changed(pictures.nth(i), before[i]) != before[i], f"interpolation picture {i} did not change"
        screenshot(page, walk, ARTIFACTS / "interpolation.png")
        page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"))

        assert page.evaluate(ERRORS) == [], "a widget callback wrote to stderr"
        if os.environ.get("VAELIB_UPDATE_SCREENSHOT") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copyfile(ARTIFACTS / "explorer.png", ROOT / "docs" / "explorer.png")
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "failure.png"))
        raise
    finally:
        page.close()
        print(f"browser test: {time.monotonic() - start:.1f} s in the page")
    assert hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest() == notebook_hash, "the repository's notebook changed"
