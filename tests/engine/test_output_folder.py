"""The outputs folder: files numbered in date folders with each image's seed and place in its batch,
and a size cap kept by deleting the oldest files."""

from __future__ import annotations

import os

from support import tiny_request
from studio.metadata import read_png
from studio.outputs import OutputFolder


def test_output_folder_numbers_files_in_date_folders(studio, tmp_path):
    folder = OutputFolder(tmp_path / "outputs")
    result = studio.run(tiny_request(seed=500, batch_size=2))
    first = folder.save(result)
    second = folder.save(result)
    assert [p.name for p in first + second] == ["00001-500.png", "00002-501.png", "00003-500.png", "00004-501.png"]
    assert first[0].parent.parent == (tmp_path / "outputs").resolve()
    meta = read_png(first[1].read_bytes())
    # The whole batch is what makes this image exactly: its first seed, and this image's place in it.
    assert meta.request["seed"] == 500 and meta.request["batch_size"] == 2 and meta.request["batch_index"] == 1
    assert "Seed: 501," in meta.infotext and "Batch size: 2, Batch pos: 1" in meta.infotext
    assert OutputFolder(None).keep is False


def test_the_outputs_folder_keeps_under_its_cap_by_deleting_the_oldest(studio, tmp_path):
    result = studio.run(tiny_request(seed=1))
    folder = OutputFolder(tmp_path)
    first = folder.save(result)[0]
    size = first.stat().st_size
    os.utime(first, (1, 1))  # the oldest
    capped = OutputFolder(tmp_path, max_bytes=int(size * 2.5))
    second = capped.save(result)[0]
    third = capped.save(result)[0]
    assert not first.exists() and second.exists() and third.exists()
