"""A running studio serves only its outputs, as copies, and says when it is open to others (`--share`
without `--auth`)."""

from __future__ import annotations

import os
from pathlib import Path
import urllib.error
import urllib.request

import pytest
from PIL import Image

import app
from support import ROOT, running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with running_app(tmp_path_factory) as running:
        yield running


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.parametrize("target", [
    "/etc/passwd", str(ROOT / "app.py"), str(ROOT / "presets" / "families.json"), "../../../../etc/passwd",
    str(ROOT / "studio" / ".." / "app.py"), os.path.expanduser("~/.bash_history"),
])
def test_files_outside_the_outputs_are_not_served(served, target):
    assert fetch(f"{served.url}gradio_api/file={target}") in (400, 403, 404)


def test_results_are_served_as_copies_and_the_outputs_folder_is_not_served_by_path(served):
    """Output names (date / number / seed) are guessable: the folder is never served; the caller gets
    Gradio's copy, whose folder is named by the file's content."""
    from gradio_client import Client

    images, *_ = Client(served.url, verbose=False, download_files=False).predict(
        prompt="served", model="tiny", steps=1, width=64, height=64, api_name="/generate")
    copy = images[0]["image"]["path"]  # where the server keeps the copy it hands out
    saved = next(served.outputs.glob("*/*.png"))
    assert Path(copy).read_bytes() == saved.read_bytes() and Path(copy).parent != saved.parent
    assert fetch(f"{served.url}gradio_api/file={copy}") == 200
    assert fetch(f"{served.url}gradio_api/file={saved}") in (400, 403, 404)


def test_share_without_auth_warns(monkeypatch, caplog):
    launched = {}
    monkeypatch.setattr("gradio.Blocks.launch", lambda self, **kw: launched.update(kw))
    # main() lowers PIL's process-wide picture limit: restored after this test, for the tests after it
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    with caplog.at_level("WARNING", logger="studio"):
        app.main(["--model", "tiny", "--share", "--no-outputs"])
    assert "--share without --auth" in caplog.text and launched["share"] is True
    assert not launched.get("allowed_paths")  # nothing is served by path, the outputs folder included
    assert launched["enable_monitoring"] is False  # a shared studio does not publish its traffic
