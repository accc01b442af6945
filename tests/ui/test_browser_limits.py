"""The server as ``streamlit run app.py`` starts it with the repository's .streamlit/config.toml (no
address on the command line): it listens on 127.0.0.1 only, and the browser refuses an upload
over the size limit, a file that is not a checkpoint, and a checkpoint that is not genapp's."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import REPO, wait_for
from .test_e2e_browser import _healthy, browser_page, free_port, wait_idle

UPLOAD_LIMIT_MB = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* write them) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture
def default_server(tmp_path):
    port = free_port()
    empty = tmp_path / "checkpoints"
    empty.mkdir()
    env = dict(os.environ, GENAPP_RUNS_DIR=str(tmp_path / "runs"), GENAPP_CHECKPOINTS_DIR=str(empty))
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url), timeout=90, what="the streamlit server")
        yield url, port, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_listens_on_localhost_only_and_refuses_bad_uploads(default_server):
    url, port, tmp_path = default_server
    if Path("/proc/net/tcp").exists():
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and neither 0.0.0.0 nor ::

    too_big = tmp_path / "huge.pt"
    with open(too_big, "wb") as f:
        f.truncate((UPLOAD_LIMIT_MB + 1) * 2**20)  # sparse: costs no disk
    picture = tmp_path / "digit.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")

    with browser_page(url) as page:
        upload = page.locator(".st-key-vae-upload input[type=file]")
        upload.set_input_files(str(too_big))
        page.get_by_text("or smaller").wait_for()
        upload.set_input_files(str(picture))
        page.get_by_text("files are not allowed").wait_for()
        upload.set_input_files(str(junk))
        page.get_by_text("Cannot open this checkpoint").wait_for()
        wait_idle(page)
        assert page.locator("[data-testid=stException]").count() == 0


def test_user_text_is_shown_as_text_never_as_markup(default_server):
    """A run's error (here: a value someone typed, with a markdown link, an image, Streamlit's own
    colour and emoji syntax and LaTeX) reaches every session as the characters it is."""
    from genapp.runs import RunDir

    from .conftest import tiny_config

    url, _, tmp_path = default_server
    hostile = "MNIST folder [click me](http://example.invalid/x) ![img](http://example.invalid/i.png) :red[red] :smile: $x^2$ **bold**"
    run = RunDir(tmp_path / "runs" / "hostile")
    run.create(tiny_config().to_dict())
    run.write_status("failed", error=hostile)
    with browser_page(url) as page:
        page.get_by_role("tab", name="Train").first.click()
        wait_idle(page)
        shown = page.locator("[data-testid=stAlertContentError]").filter(has_text="click me").first
        shown.wait_for()
        text = shown.inner_text().replace("\u2060", "")  # the word joiners that keep addresses from linking
        assert "[click me](http://example.invalid/x)" in text and "![img](http://example.invalid/i.png)" in text
        assert ":red[red]" in text and "$x^2$" in text and "**bold**" in text
        found = page.locator("a[href*='example.invalid'], img[src*='example.invalid']")
        assert found.count() == 0, [found.nth(i).evaluate("e => e.parentElement.parentElement.outerHTML.slice(0, 600)") for i in range(found.count())]
        assert shown.locator("strong, .katex, a, img").count() == 0
