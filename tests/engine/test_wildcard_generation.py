"""Dynamic prompts end to end on the tiny model: a batch with a wildcard runs as its images' own prompts,
each PNG's infotext holds its resolved prompt and the template, and PNG Info's settings make that very
image again."""

from __future__ import annotations

import numpy as np
from PIL import Image

from support import pixels
from studio import GenerationRequest, StudioConfig
from studio.infotext import parse_infotext
from studio.metadata import read_png
from studio.outputs import OutputFolder
from studio.pnginfo import recall
from studio.service import Service
from studio.service.plan import make_plan

BASE = {"model": "tiny", "steps": 3, "width": 64, "height": 64, "seed": 21, "sampler": "Euler"}
TEMPLATE = "a __shape__ in {fog|sun}"


def test_a_wildcard_batch_saves_each_images_prompt_and_template_and_regenerates_it(studio, tmp_path):
    folder = tmp_path / "wildcards"
    folder.mkdir()
    (folder / "shape.txt").write_text("cube\nball\ncone\nring\n")
    plan = make_plan({**BASE, "prompt": TEMPLATE, "negative_prompt": "{blur|noise}", "batch_size": 3},
                     StudioConfig(wildcards_dir=folder))
    assert sum(r.batch_size for r in plan) == 3 and all(r.prompt_template == TEMPLATE for r in plan)
    service = Service(studio, OutputFolder(tmp_path / "out"))
    for last in service.execute("caller", plan):
        pass
    assert [image.seed for image in last.saved] == [21, 22, 23]
    for image in last.saved:
        meta = read_png(image.path)
        info = parse_infotext(meta.infotext)
        assert "__" not in info.prompt and "{" not in info.prompt and info.prompt.startswith("a ")
        assert info.params["Template"] == TEMPLATE and info.params["Negative Template"] == "{blur|noise}"
        assert info.params["Seed"] == str(image.seed)
        recalled = recall(meta)
        assert recalled.fields["prompt"] == info.prompt and "prompt_template" not in recalled.fields
        again = studio.run(GenerationRequest.from_settings(recalled.fields))
        saved = np.asarray(Image.open(image.path).convert("RGB"))
        assert np.array_equal(pixels(again.images[recalled.batch_index]), saved)
