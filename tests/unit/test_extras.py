"""A1111's Extras requests (studio/web/sdapi/extras.py): sizes by factor or to a size as the upscale
task's settings, the filters and folder models the studio has, a model the folder lacks said to run as
Lanczos, and limits checked before any work."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from studio.errors import InvalidValue
from studio.web.sdapi import extras


def b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_scale_by_a_factor_or_to_a_size_become_the_upscale_tasks_settings():
    picture = Image.new("RGB", (40, 20), (10, 200, 30))
    by = extras.parse({"upscaling_resize": "2.5", "upscaler_1": "Lanczos"})
    assert by.notes == () and extras.target_size(by, picture.size) == (100, 50)
    assert extras.settings(by, picture) == {
        "task": "upscale", "upscale_image": picture, "upscaler": "Lanczos", "upscale_by": 2.5, "upscale_width": 0,
        "upscale_height": 0, "upscale_crop": True, "upscaler_2": "None", "upscaler_2_visibility": 0.0}
    to = extras.settings(extras.parse({"resize_mode": 1, "upscaling_resize_w": 64, "upscaling_resize_h": 48,
                                       "upscaling_crop": False}), picture)
    assert (to["upscale_width"], to["upscale_height"], to["upscale_crop"]) == (64, 48, False)


def test_a_model_upscaler_the_folder_lacks_and_face_restoration_are_said_not_silently_replaced(tmp_path):
    from studio.upscalers.tiny import write

    write(tmp_path, {"RealESRGAN_x4plus": ("ESRGAN", 4)})
    asked = extras.parse({"upscaler_1": "4x-UltraSharp", "upscaler_2": "nearest", "extras_upscaler_2_visibility": 0.5,
                          "codeformer_visibility": 1}, tmp_path)
    assert asked.upscaler_1 == "Lanczos" and asked.upscaler_2 == "Nearest"
    assert any("4x-UltraSharp" in note and "Lanczos" in note for note in asked.notes)
    assert any("CodeFormer" in note for note in asked.notes)
    assert "4x-UltraSharp" in extras.html_info(asked, [(32, 32)])
    # A1111's name of a model the folder has runs that model; None is A1111's plain resize.
    found = extras.parse({"upscaler_1": "R-ESRGAN 4x+", "upscaler_2": "None"}, tmp_path)
    assert (found.upscaler_1, found.upscaler_2, found.notes) == ("R-ESRGAN 4x+", "None", ())
    assert extras.parse({"upscaler_1": "None"}).upscaler_1 == "Lanczos"


@pytest.mark.parametrize("body, field", [
    ({"upscaling_resize": 20}, "upscaling_resize"), ({"upscaling_resize": "lots"}, "upscaling_resize"),
    ({"resize_mode": 3}, "resize_mode"), ({"extras_upscaler_2_visibility": 2}, "extras_upscaler_2_visibility"),
    ({"upscaler_1": ["Lanczos"]}, "upscaler_1"), ([], "body"),
])
def test_bad_values_are_named(body, field):
    with pytest.raises(InvalidValue) as caught:
        extras.parse(body)
    assert caught.value.field == field


def test_results_too_large_together_are_refused_before_any_work():
    big = extras.parse({"upscaling_resize": 8})
    with pytest.raises(InvalidValue) as caught:
        extras.check_cost(big, [(1024, 1024)])
    assert caught.value.field == "upscaling_resize"
    extras.check_cost(extras.parse({"upscaling_resize": 4}), [(1024, 1024)] * 2)  # at the limit
    with pytest.raises(InvalidValue, match="x 3 pictures"):
        extras.check_cost(extras.parse({"upscaling_resize": 4}), [(1024, 1024)] * 3)


def test_a_picture_too_large_is_refused_from_its_header_without_decoding():
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 65536, 65536, 8, 2, 0, 0, 0))
    bomb = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    with pytest.raises(InvalidValue) as caught:
        extras.decode("image", base64.b64encode(bomb).decode())
    assert caught.value.field == "image" and "pixels" in str(caught.value)
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 5000, 5000, 8, 2, 0, 0, 0))  # past ours, under PIL's
    with pytest.raises(InvalidValue, match="5000x5000"):
        extras.decode("image", base64.b64encode(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b"")).decode())
    assert extras.decode("image", b64(Image.new("RGB", (8, 8)))).size == (8, 8)


def test_gfpgan_visibility_restores_faces_after_the_upscalers_where_the_folder_has_a_face_restorer(monkeypatch, tmp_path):
    picture = Image.new("RGB", (40, 20))
    none = extras.parse({"gfpgan_visibility": 0.5}, tmp_path)
    assert none.faces == 0 and any("no face restoration model" in note for note in none.notes)
    assert "restore_faces" not in extras.settings(none, picture)
    monkeypatch.setattr(extras, "_face_restorers", lambda folder, allow_pickle: ["GFPGANv1.4"])
    asked = extras.parse({"gfpgan_visibility": "0.5"}, tmp_path)
    assert asked.notes == ()
    settings = extras.settings(asked, picture)
    assert (settings["restore_faces"], settings["face_restore_visibility"]) == (True, 0.5)
    with pytest.raises(InvalidValue, match="gfpgan_visibility"):
        extras.parse({"gfpgan_visibility": 2}, tmp_path)
