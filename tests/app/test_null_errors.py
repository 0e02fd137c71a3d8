"""No null errors (issue 28): a damaged picture dropped into the init image, the inpaint editor, a
ControlNet canvas or an image prompt slot, and any handler failure without a message, answer a message
that names the field, never Gradio's `{"error": null}`."""

from __future__ import annotations

import io

import gradio as gr
import pytest
from gradio.data_classes import FileData, ImageData
from gradio.components.image_editor import EditorData
from PIL import Image

from studio.web.bounded import BoundedImage, BoundedImageEditor
from studio.web.calls import reported


@pytest.fixture
def truncated(tmp_path):
    """A PNG cut in half: its header (and size) read fine, its pixels do not."""
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.mark.parametrize("elem_id", ["init_image", "ip-image-0"])
def test_a_truncated_picture_in_an_image_names_its_field(truncated, elem_id):
    image = BoundedImage(type="pil", elem_id=elem_id)
    with pytest.raises(gr.Error) as answer:
        image.preprocess(ImageData(path=str(truncated)))
    assert answer.value.message.startswith(f"{elem_id}: the picture is damaged (truncated)")


@pytest.mark.parametrize("elem_id", ["inpaint_editor", "cn-image-0"])
def test_a_truncated_picture_in_an_editor_names_its_field(truncated, elem_id):
    editor = BoundedImageEditor(type="pil", elem_id=elem_id)
    payload = EditorData(background=FileData(path=str(truncated)), layers=[], composite=FileData(path=str(truncated)))
    with pytest.raises(gr.Error) as answer:
        editor.preprocess(payload)
    assert answer.value.message.startswith(f"{elem_id}: the picture is damaged (truncated)")


def test_a_whole_picture_still_comes_through(tmp_path):
    path = tmp_path / "whole.png"
    Image.new("RGB", (64, 48), "red").save(path)
    assert BoundedImage(type="pil", elem_id="init_image").preprocess(ImageData(path=str(path))).size == (64, 48)


@pytest.mark.parametrize("raised", [gr.Error(""), gr.Error(None), OSError(), KeyError("image")])
def test_a_handler_failure_without_a_message_gets_one(raised):
    def preview_map():
        raise raised

    with pytest.raises(gr.Error) as answer:
        reported(preview_map)()
    assert answer.value.message and answer.value.message.startswith("preview_map: ")
