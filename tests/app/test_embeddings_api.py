"""Textual-inversion embeddings through the app a user starts: `--embeddings-dir`, A1111's
`/sdapi/v1/embeddings` over HTTP (loaded / skipped for the model used last) and a txt2img call whose
prompt names one (its `TI hashes` in the infotext)."""

from __future__ import annotations

import json
import urllib.request

from support import running_app
from support.embedding_files import write_a1111_pt, write_concept, write_xl


def call(url: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        return json.load(r)


def test_the_embeddings_route_lists_the_folder_and_a_prompt_uses_one(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embeddings")
    write_concept(folder, "mystyle", count=3)
    write_xl(folder, "xlstyle", count=2)
    write_a1111_pt(folder, "legacy")  # no --allow-pickle: in neither list
    with running_app(tmp_path_factory, "--embeddings-dir", str(folder)) as app:
        before = call(app.url, "sdapi/v1/embeddings")
        assert set(before["loaded"]) == {"mystyle", "xlstyle"} and before["skipped"] == {}  # no model used yet
        assert before["loaded"]["mystyle"] == {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                                               "shape": 32, "vectors": 3}
        made = call(app.url, "sdapi/v1/txt2img", {"prompt": "a (mystyle:1.1) lantern", "steps": 2, "width": 64,
                                                  "height": 64, "seed": 3})
        assert "TI hashes: " in json.loads(made["info"])["infotexts"][0]
        after = call(app.url, "sdapi/v1/embeddings")  # the tiny SD 1.x model: 32 wide, xlstyle is 64
        assert set(after["loaded"]) == {"mystyle"} and set(after["skipped"]) == {"xlstyle"}
        assert after["skipped"]["xlstyle"]["shape"] == 64
