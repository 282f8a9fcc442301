"""Measure every slide of every notebook as jupyterlab-rise shows it, in a real browser at 1280 x 720.

Usage: python scripts/check_slides.py [notebooks/NN_name.ipynb ...]   (default: all)
       [--width 1280] [--height 720] [--report FILE.md] [--screenshots DIR]

It starts JupyterLab once (on 127.0.0.1, in a temporary folder, on copies of the notebooks with
their stored outputs), and for each notebook opens its slideshow where jupyterlab-rise's own command
(`RISE:slideshow`) opens it, in a new browser tab (/rise/NAME), steps through it with the keyboard
(Space, as a presenter does; reveal.js's transitions are off, so each slide is measured as soon as it
is on screen and its images have loaded) and measures each slide: the height of its content and where its
last visible cell ends. It prints the slide count (and the count the slide metadata predicts) and
every slide whose content does not fit the window, with its height, and exits 1 if any does.
A lecturer's projector is 1280 x 720 or bigger; a slide that does not fit has to be scrolled in
front of the room.

The fix is in the notebook: split the slide (a `## ` heading opens a slide, a `### ` heading a
sub-slide; scripts/set_slides.py), or make its figure smaller. tests/test_browser.py asserts that
every slide fits, with the same code.

Needs Debian's Chromium at /usr/bin/chromium and Python Playwright (`playwright install` is never
needed).
"""

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from repo import ROOT, notebooks as series

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_S = 180  # for the server to start, a deck to open, a notebook to run (a loaded 2-core machine is slow)
WIDTH, HEIGHT = 1280, 720

# JupyterLab settings for a test: no news toast, every cell in the page (with windowed rendering,
# cells scrolled out of view are not in the DOM), no slide transitions in the deck.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
    # The deck changes slide at once: reveal.js's slide-in animation only delays a measurement.
    "jupyterlab-rise/plugin.jupyterlab-settings": {"transition": "none"},
}

NOTEBOOK_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"""() => {{
    const panel = {NOTEBOOK_PANEL};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && panel.sessionContext.isReady && kernel.status === "idle";
}}"""
NOTEBOOK_OPEN = f"""() => {{
    const panel = {NOTEBOOK_PANEL};
    return !!panel && !!panel.context && !!panel.content && !!panel.content.widgets && panel.content.widgets.length > 0
        && panel.context.isReady;
}}"""

# In the deck's tab: the deck is built (reveal.js marks it ready).
DECK_READY = "() => !!document.querySelector('.reveal.ready .slides section')"
# The slide on screen: a leaf <section> (a sub-slide inside a vertical stack, or a plain slide).
# Height: its content's full height; bottom: where its last visible cell ends in the window.
CURRENT_SLIDE = """() => {
    const present = Array.from(document.querySelectorAll('.reveal .slides section.present'))
        .filter(s => !s.querySelector('section'));
    if (present.length !== 1) return null;
    const slide = present[0];
    const cells = Array.from(slide.querySelectorAll('.jp-Cell'))
        .filter(c => c.getBoundingClientRect().height > 0 && getComputedStyle(c).visibility !== 'hidden');
    const rects = cells.map(c => c.getBoundingClientRect());
    const images = Array.from(slide.querySelectorAll('.jp-OutputArea-output img')).map(img => {
        const r = img.getBoundingClientRect();
        return {width: r.width, height: r.height, top: r.top, bottom: r.bottom, decoded: img.complete && img.naturalWidth > 0,
                widget: img.classList.contains('widget-image')};
    });
    return {
        hash: location.hash,
        height: Math.ceil(slide.scrollHeight),
        top: rects.length ? Math.floor(Math.min(...rects.map(r => r.top))) : 0,
        bottom: rects.length ? Math.ceil(Math.max(...rects.map(r => r.bottom))) : 0,
        title: (slide.innerText.trim().split('\\n')[0] || '').slice(0, 70),
        text: slide.innerText,
        cells: cells.length,
        images: images,
        sliders: slide.querySelectorAll('.widget-slider .noUi-handle').length,
    };
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_by_parent():
    """``{parent pid: [the pids it started directly]}`` for every process now (Linux's /proc; elsewhere empty)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # it ended meanwhile
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    return children


def process_tree(pid):
    """``pid`` and every process under it, now (read from Linux's /proc; elsewhere just ``pid``)."""
    children = children_by_parent()
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def kill(pids):
    """SIGKILL each of ``pids`` that is still running."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _stop_with_parent():
    """Run in the server's process before it starts (Linux): ask the kernel for SIGTERM when the process
    that started it dies. A test process killed before its cleanup ran (a busy machine, a test runner
    that gives its workers a few seconds to stop) then leaves no JupyterLab behind: on SIGTERM the
    server shuts its kernels down and exits."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, so that every ``finally`` runs and stops
    the servers and browsers started here (by default they end Python at once and leave them running)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop(process, grace_s=15):
    """Ask the server (and through it, its kernels) to stop; kill whatever of it is left: its process
    group, and its kernels (each kernel runs in a session of its own)."""
    tree = process_tree(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # Jupyter's clean shutdown (SIGINT twice skips the prompt)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the server's own group
    except ProcessLookupError:
        pass
    kill(tree)
    process.wait(5)


@contextlib.contextmanager
def jupyter_lab(home, notebooks):
    """A JupyterLab server on 127.0.0.1 serving ``home/root``, which holds ``notebooks`` ({name: path of a
    prepared copy}); settings, workspaces and runtime files all stay under ``home``."""
    home = Path(home)
    root = home / "root"
    root.mkdir()
    for name, source in notebooks.items():  # a name may be a path in a sub-folder
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / name)
    for name, values in LAB_SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1",
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"))  # the deck's app (jupyterlab-rise) reads it
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
               # A deck shows the notebook's stored outputs: opened on its own it starts no kernel (a deck
               # entered from JupyterLab joins the kernel the notebook already has there).
               "--RiseApp.notebook_starts_kernel=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(home / "server.log", "w")
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=_stop_with_parent if sys.platform == "linux" else None)
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
        yield {"url": url, "token": token, "log": home / "server.log", "root": root}
    finally:
        stop(process)
        log.close()


def expected_slides(path):
    """The number of slides (slides and sub-slides) the notebook's slide metadata makes, and their first lines."""
    notebook = json.loads(Path(path).read_text())
    shown = [c for c in notebook["cells"]
             if c.get("metadata", {}).get("slideshow", {}).get("slide_type", "-") not in ("skip", "notes")]
    titles = []
    for i, cell in enumerate(shown):
        kind = cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")
        if i == 0 or kind in ("slide", "subslide"):
            titles.append("".join(cell["source"]).strip().split("\n")[0])
    return titles


def open_notebook(page, lab, name):
    """Open ``name`` in JupyterLab and make it the current document: the first time by loading JupyterLab
    in ``page`` (``?reset``: a workspace restored from an earlier page could otherwise leave another
    notebook current), afterwards in the JupyterLab already there."""
    if not page.url.startswith(f"{lab['url']}/lab"):
        page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={lab['token']}")
        page.wait_for_function(NOTEBOOK_OPEN, timeout=TIMEOUT_S * 1000)
    is_current = f"(name) => {{ const panel = {NOTEBOOK_PANEL}; return !!panel && !!panel.context && panel.context.path === name; }}"
    if not page.evaluate(is_current, name):
        page.evaluate("(name) => { window.jupyterapp.commands.execute('docmanager:open', {path: name}); }", name)
    page.wait_for_function(is_current, arg=name, timeout=TIMEOUT_S * 1000)
    page.wait_for_function(NOTEBOOK_OPEN, timeout=TIMEOUT_S * 1000)


def open_deck(context, page):
    """Enter the slideshow with jupyterlab-rise's own command, from the first cell; the deck's page."""
    page.evaluate(f"() => {{ const panel = {NOTEBOOK_PANEL}; panel.content.activeCellIndex = 0; }}")
    with context.expect_page(timeout=TIMEOUT_S * 1000) as opened:
        page.evaluate("window.jupyterapp.commands.execute('RISE:slideshow')")
    deck = opened.value
    deck.set_default_timeout(TIMEOUT_S * 1000)
    deck.wait_for_function(DECK_READY, polling=250)
    deck.wait_for_function(f"() => ({CURRENT_SLIDE})() !== null", polling=250)
    return deck


# In the deck's tab, one call per slide: waits until the deck has left the slide at ``hash`` (the one
# before), then until the slide on screen has settled (the images it shows loaded, and it is where it
# was one frame before: the deck has no transitions, this only waits out a late re-layout; the hidden
# cells of skipped slides sit in the first slide, and their Colab badge never loads offline, so only
# images on screen count), and measures it
# (CURRENT_SLIDE) and whether it is the deck's last (no leaf <section> after it). Waits at most
# ``timeout`` ms for each; the measurement then shows what is on screen.
NEXT_SLIDE = f"""async ([hash, timeout]) => {{
    const measure = {CURRENT_SLIDE};
    const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
    const leaves = () => Array.from(document.querySelectorAll('.reveal .slides section')).filter(s => !s.querySelector('section'));
    const position = () => {{
        const present = leaves().filter(s => s.classList.contains('present'));
        if (present.length !== 1) return null;
        const shown = Array.from(present[0].querySelectorAll('img')).filter(img => img.getClientRects().length > 0);
        if (!shown.every(img => img.complete)) return null;  // loaded (or failed: it will not load later)
        const r = present[0].getBoundingClientRect();
        return [Math.round(r.left), Math.round(r.top), present[0].scrollHeight].join(',');
    }};
    let deadline = performance.now() + timeout;
    while (location.hash === hash) {{
        if (performance.now() > deadline) return null;
        await frame();
    }}
    deadline = performance.now() + timeout;
    for (let last = null; performance.now() < deadline; ) {{
        await frame();
        const now = position();
        if (now !== null && now === last) break;
        last = now;
    }}
    const all = leaves();
    return {{...measure(), last: all.length > 0 && all[all.length - 1].classList.contains('present')}};
}}"""


def walk(deck, on_slide=None, max_slides=200, timeout_s=30):
    """Step through the deck with Space from the first slide to the last; measure each slide.

    ``on_slide(index, slide)`` is called on each slide while it is on screen. A Space that does not move
    to the next slide within ``timeout_s`` ends the walk early (the slide count then tells).
    """
    slides = []
    hash = None  # no slide before the first
    for index in range(max_slides):
        slide = deck.evaluate(NEXT_SLIDE, [hash, timeout_s * 1000])
        if slide is None:  # Space moves no more
            break
        slide["index"] = index + 1
        slides.append(slide)
        if on_slide:
            on_slide(index + 1, slide)
        if slide["last"]:
            break
        hash = slide["hash"]
        deck.keyboard.press("Space")
    return slides


def overflowing(slides, height=HEIGHT):
    return [s for s in slides if s["height"] > height or s["bottom"] > height]


# Shut down the current notebook's kernel and close it (it is not modified: no prompt).
CLOSE_NOTEBOOK = f"""async () => {{
    const panel = {NOTEBOOK_PANEL};
    await panel.sessionContext.shutdown();
    panel.dispose();
}}"""


def open_deck_at_url(context, lab, name):
    """Open ``name``'s deck at the address RISE's command opens (``/rise/NAME?activeCellIndex=0``), in a new tab
    of ``context``, without first opening the notebook in JupyterLab; the deck's page."""
    deck = context.new_page()
    deck.set_default_timeout(TIMEOUT_S * 1000)
    query = urllib.parse.urlencode({"activeCellIndex": 0, "token": lab["token"]})
    deck.goto(f"{lab['url']}/rise/{urllib.parse.quote(name)}?{query}", wait_until="commit")
    deck.wait_for_function(DECK_READY, polling=250)
    deck.wait_for_function(f"() => ({CURRENT_SLIDE})() !== null", polling=250)
    return deck


def shut_down_sessions(lab, name):
    """Stop the kernel a deck started for ``name`` (its session on the server), so that decks walked one after
    another do not leave a kernel each running."""
    headers = {"Authorization": f"token {lab['token']}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab['url']}/api/sessions", headers=headers)) as response:
        sessions = json.load(response)
    for session in sessions:
        if session.get("path") == name:
            request = urllib.request.Request(f"{lab['url']}/api/sessions/{session['id']}", method="DELETE", headers=headers)
            urllib.request.urlopen(request).close()


def measure(notebooks, width=WIDTH, height=HEIGHT, screenshots=None, on_slide=None, browser=None, lab=None,
            by_command=()):
    """{notebook name: list of slides measured} for the notebooks (paths), each with its stored outputs.

    Each deck opens in a tab of one browser context (which keeps the deck's scripts cached) at the address
    RISE's command opens; those whose names are in ``by_command`` are first opened in JupyterLab and entered
    with the command itself, as a lecturer does (the deck is the same; opening the notebook in JupyterLab
    first costs a few seconds each). ``on_slide(name, deck, index, slide)`` is called on each slide while it
    is on screen; ``browser``: a Playwright browser to use (default: launch Chromium here); ``lab``: a
    running ``jupyter_lab`` that serves the notebooks under their names (default: start one here).
    """
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as home, contextlib.ExitStack() as stack:
        if lab is None:
            lab = stack.enter_context(jupyter_lab(Path(home), {Path(p).name: p for p in notebooks}))
        if browser is None:
            playwright = stack.enter_context(sync_playwright())
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            stack.callback(browser.close)
        context = browser.new_context(viewport={"width": width, "height": height})
        stack.callback(context.close)
        page = None  # JupyterLab's tab, for the decks entered with RISE's command
        for path in notebooks:
            name = Path(path).name
            if name in by_command:
                if page is None:
                    page = context.new_page()
                    page.set_default_timeout(TIMEOUT_S * 1000)
                open_notebook(page, lab, name)
                deck = open_deck(context, page)
            else:
                deck = open_deck_at_url(context, lab, name)
            if f"/rise/{name}" not in urllib.parse.unquote(deck.url):
                raise RuntimeError(f"opened the deck {deck.url}, expected {name}")

            def each(index, slide, name=name, deck=deck):
                if screenshots:
                    Path(screenshots).mkdir(parents=True, exist_ok=True)
                    deck.screenshot(path=str(Path(screenshots) / f"{name[:2]}_{index:02d}.png"))
                if on_slide:
                    on_slide(name, deck, index, slide)

            try:
                results[name] = walk(deck, each)
            finally:
                deck.close()
                if name in by_command:
                    page.bring_to_front()  # JupyterLab's tab
                    page.evaluate(CLOSE_NOTEBOOK)  # or each deck opened makes the next one slower
                else:
                    shut_down_sessions(lab, name)
    return results


def report(results, notebooks, height=HEIGHT):
    """Markdown: slide counts and every slide that does not fit, with its height."""
    lines = ["| notebook | slides (metadata) | slides that do not fit (slide: content height px) |", "|---|---|---|"]
    for path in notebooks:
        name = Path(path).name
        slides = results[name]
        bad = overflowing(slides, height)
        listed = "; ".join(f"{s['index']} \"{s['title']}\": {s['height']}" for s in bad) or "none"
        lines.append(f"| {name} | {len(slides)} ({len(expected_slides(path))}) | {listed} |")
    total = sum(len(overflowing(s, height)) for s in results.values())
    lines.append("")
    lines.append(f"{total} of {sum(len(s) for s in results.values())} slides do not fit {WIDTH} x {height}.")
    return "\n".join(lines)


def snapshot(notebooks, folder):
    """Copies of the notebooks in ``folder`` (paths): measure and compare against one version of each,
    even while someone edits the originals."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in notebooks:
        shutil.copyfile(path, folder / Path(path).name)
        copies.append(folder / Path(path).name)
    return copies


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--height", type=int, default=HEIGHT)
    parser.add_argument("--report", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--screenshots", type=Path, help="save a picture of every slide in this folder")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in series(args.notebooks)]
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as folder, sigterm_interrupts():
        notebooks = snapshot(notebooks, folder)
        results = measure(notebooks, args.width, args.height, args.screenshots)
        text = report(results, notebooks, args.height)
    print(text)
    print(f"({time.monotonic() - start:.0f} s)")
    if args.report:
        args.report.write_text(f"# Slides that do not fit {args.width} x {args.height}\n\n"
                               f"Measured by `python scripts/check_slides.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
                               " (jupyterlab-rise in headless Chromium, stored outputs).\n\n" + text + "\n")
    return 1 if any(overflowing(s, args.height) for s in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
