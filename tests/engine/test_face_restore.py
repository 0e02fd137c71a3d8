"""Face restoration (A1111's "Restore faces", studio/upscalers/faces.py) with a full-size GFPGAN of random
weights (spandrel's GFPGANv1Clean, 86M parameters, built once here and saved as .safetensors) and the
offline tiny detector: only the faces' squares change, the same picture gives the same result, visibility 0
changes nothing; the infotext, the Upscale task, the folder's lists, refusals by field name and Stop. A
GFPGAN forward at 512 px takes seconds on one core: each run here restores two faces at most."""

from __future__ import annotations

import numpy as np
import pytest

from support import pixels, tiny_request
from studio import Studio, StudioConfig
from studio.detail.targets import TARGETS, TINY_DETECTOR
from studio.devices import DeviceChoice
from studio.errors import InvalidValue
from studio.events import Cancelled, Result, Status
from studio.infotext import fields_from_params, parse_infotext
from studio.upscalers.library import available

if not available():
    pytest.skip("spandrel is not installed (pip install --no-deps -r requirements-upscale.txt)", allow_module_level=True)

from studio.upscalers import faces, tiny  # noqa: E402
from studio.upscalers.faces import MAX_FACES  # noqa: E402
from studio.upscalers.models import face_restorers, listed  # noqa: E402

CPU = DeviceChoice("cpu", "fp32")
# The tiny detector scores two of the tiny model's 64 px picture's patches at 1: two 9 px faces.
FACES = dict(restore_faces=True, face_detector=TINY_DETECTOR, face_confidence=0.99)


def gfpgan_state() -> dict:
    import torch

    from studio.upscalers.library import spandrel

    spandrel()
    from spandrel.architectures.GFPGAN import GFPGAN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                     fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    return {key: value.contiguous() for key, value in net.state_dict().items()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from safetensors.torch import save_file

    root = tiny.write(tmp_path_factory.mktemp("upscalers"))
    save_file(gfpgan_state(), str(root / "GFPGANv1.4.safetensors"))
    return root


@pytest.fixture(scope="module")
def studio(folder):
    return Studio(StudioConfig(device="cpu", cache_size=1, upscalers_dir=folder))


@pytest.fixture(scope="module")
def plain(studio):
    return studio.run(tiny_request())


@pytest.fixture(scope="module")
def restored(studio):
    return studio.run(tiny_request(**FACES))


def squares(image) -> np.ndarray:
    """Where face restoration may change pixels: the squares around the faces the detector finds."""
    from studio.detail import detector as detectors

    boxes = detectors.load(TINY_DETECTOR, CPU).detect(image, TARGETS["face"], FACES["face_confidence"])[:MAX_FACES]
    inside = np.zeros((image.height, image.width), bool)
    for left, top, right, bottom in (faces.square(box, image.size) for box in boxes):
        inside[top:bottom, left:right] = True
    return inside


def test_a_gfpgan_file_is_a_face_restorer_and_not_an_upscaler(folder):
    assert face_restorers(folder, False) == ["GFPGANv1.4"]
    assert "GFPGANv1.4" not in dict(listed(folder, False))
    assert [(n, i.purpose) for n, i in listed(folder, False, "face")] == [("GFPGANv1.4", "FaceSR")]


def test_the_square_around_a_face_is_twice_its_side_inside_the_picture():
    from studio.detail.masks import Box

    assert faces.square(Box(20, 20, 30, 30, 1.0), (64, 64)) == (15, 15, 35, 35)
    assert faces.square(Box(0, 0, 10, 8, 1.0), (64, 64)) == (0, 0, 20, 20)  # moved inside
    assert faces.square(Box(0, 0, 40, 40, 1.0), (64, 48)) == (0, 0, 48, 48)  # shrunk to the picture


def test_only_the_faces_squares_change_and_the_same_seed_gives_the_same_picture(studio, plain, restored):
    before, after = pixels(plain.images[0]).astype(int), pixels(restored.images[0]).astype(int)
    inside = squares(plain.images[0])
    assert 0 < inside.mean() < 0.5
    assert np.array_equal(before[~inside], after[~inside])
    assert np.abs(before - after)[inside].mean() > 2
    again = studio.run(tiny_request(**FACES))
    assert np.array_equal(pixels(again.images[0]), pixels(restored.images[0]))


def test_visibility_0_changes_nothing_and_says_so(studio, plain):
    result = studio.run(tiny_request(**FACES, face_restore_visibility=0.0))
    assert np.array_equal(pixels(result.images[0]), pixels(plain.images[0]))
    assert any("visibility 0" in notice for notice in result.notices)


def test_the_infotext_names_the_restorer_and_reads_back(restored):
    info = parse_infotext(restored.infotexts[0])
    assert info.params["Face restoration"] == "GFPGAN"  # A1111's value: the folder's first GFPGAN
    assert info.params["Face restoration detector"] == TINY_DETECTOR
    found, notes = fields_from_params(info.params)
    assert not notes
    assert (found["restore_faces"], found["face_detector"], found["face_confidence"]) == (True, TINY_DETECTOR, 0.99)
    assert "face_restorer" not in found and found["face_restore_visibility"] == 1.0
    request = tiny_request(**FACES, face_restorer="GFPGANv1.4", face_restore_visibility=0.5)
    from studio.infotext import format_infotext

    params = parse_infotext(format_infotext(request)).params
    found, _ = fields_from_params(params)
    assert (found["face_restorer"], found["face_restore_visibility"]) == ("GFPGANv1.4", 0.5)
    assert "Face restoration" not in parse_infotext(format_infotext(tiny_request())).params


def test_the_upscale_task_restores_faces_after_the_upscalers(studio, plain):
    settings = dict(upscale_image=plain.images[0], upscaler="Lanczos", upscale_by=1.0, **FACES)
    result = studio.run(tiny_request(**settings))
    assert isinstance(result, Result)
    before, after = pixels(plain.images[0]).astype(int), pixels(result.images[0]).astype(int)
    inside = squares(plain.images[0])
    assert np.array_equal(before[~inside], after[~inside]) and not np.array_equal(before, after)
    params = parse_infotext(result.infotexts[0]).params
    assert params["Postprocess face restorer"] == "GFPGANv1.4" and params["GFPGAN visibility"] == "1"


def test_a_face_restorer_the_folder_lacks_or_that_is_not_one_is_refused_by_name(studio, tmp_path):
    with pytest.raises(InvalidValue, match="face_restorer.*GFPGANv1.4"):
        studio.run(tiny_request(**FACES, face_restorer="GFPGANv9"))
    with pytest.raises(InvalidValue, match="face_restorer.*Compact"):
        studio.run(tiny_request(**FACES, face_restorer="tiny-compact-x2"))
    with pytest.raises(InvalidValue, match="hires_upscaler.*face restoration model"):
        studio.run(tiny_request(hires=True, hires_upscaler="GFPGANv1.4", hires_scale=1.5))
    with pytest.raises(InvalidValue, match="face_restorer"):
        tiny_request(**FACES, face_restorer="Lanczos")
    with pytest.raises(InvalidValue, match="restore_faces"):
        tiny_request(restore_faces=True, task="inpaint", init_image=pixels_image(), mask=pixels_image())
    bare = Studio(StudioConfig(device="cpu", cache_size=1, upscalers_dir=tiny.write(tmp_path)))
    with pytest.raises(InvalidValue, match="face_restorer.*has none"):
        bare.run(tiny_request(**FACES))


def pixels_image():
    from PIL import Image

    return Image.new("RGB", (64, 64), (200, 200, 200))


def test_stop_lands_before_the_next_face(studio, plain):
    request = tiny_request(upscale_image=plain.images[0], upscaler="Lanczos", upscale_by=1.0, **FACES)
    job = studio.generate(request)
    seen = []
    for event in job:
        seen.append(event)
        if isinstance(event, Status) and event.message.startswith("Face restoration: face 1"):
            job.cancel()
    assert isinstance(seen[-1], Cancelled)
    assert not any(isinstance(e, Status) and "face 2" in e.message for e in seen)


def test_the_cost_counts_the_detection_and_the_most_faces():
    plain, restoring = tiny_request(), tiny_request(**FACES)
    assert restoring.cost() == pytest.approx(plain.cost() + 0.5 + MAX_FACES * 0.2)
    assert tiny_request(**FACES, face_restore_visibility=0.0).cost() == pytest.approx(plain.cost())
