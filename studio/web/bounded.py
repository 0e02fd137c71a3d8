"""Gradio's image inputs with bounds: nothing a visitor sends is decoded, or kept, beyond them.

`gr.Image` and `gr.ImageEditor` decode what they receive before any handler runs, and the editor
keeps uploaded blobs in a dict shared by every session, at any layer index a client names. These
subclasses check a picture's size from its header before anything is decoded, take at most
`MAX_LAYERS` editor layers, and keep at most `MAX_BLOB_SETS` editors' blobs of at most
`MAX_BLOB_BYTES` each (the oldest set is dropped first).
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any, Callable

import gradio as gr
from PIL import Image, UnidentifiedImageError

from ..hub import plain
from ..validation import MAX_INPUT_PIXELS

MAX_LAYERS = 4  # the page's editor has one layer; a little room, no more
MAX_BLOB_BYTES = 16 * 2**20  # one uploaded picture (a 4096 px photo as PNG fits)
MAX_BLOB_SETS = 8  # editors waiting for their Generate at the same moment
# The inpaint brush's strokes are this opaque, so the picture shows through what is masked; the mask is
# read back from the layer's alpha at full strength (handlers.drawn_mask).
MASK_OPACITY = 0.5


def check_picture(field: str, source: Any) -> None:
    """Refuse a picture (path, bytes or Gradio FileData) whose header claims more than
    MAX_INPUT_PIXELS, or that is not a picture, without decoding it."""
    if source is None:
        return
    path = getattr(source, "path", source)
    try:
        with Image.open(io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path) as picture:
            width, height = picture.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise gr.Error(f"{field}: not a readable picture ({type(exc).__name__})", print_exception=False) from None
    if width * height > MAX_INPUT_PIXELS:
        raise gr.Error(f"{field}: {width}x{height} is not valid; allowed: at most {MAX_INPUT_PIXELS} pixels "
                       f"(4096 x 4096)", print_exception=False)


def decoded(field: str, read: Callable[[], Any]) -> Any:
    """Gradio's decoding of a picture (`read`), each picture it gives loaded now: PIL decodes lazily, and a
    damaged file (a PNG cut short) would fail later in a handler, or answer a message-less error."""
    try:
        value = read()
        for picture in (value.values() if isinstance(value, dict) else (value,)):
            for image in (picture if isinstance(picture, list) else (picture,)):
                if isinstance(image, Image.Image):
                    image.load()
        return value
    except gr.Error:
        raise
    except Exception as exc:  # OSError "image file is truncated", SyntaxError "broken PNG file"...
        reason = plain(str(exc).split(" (")[0])[:80] or type(exc).__name__
        if isinstance(exc, (OSError, SyntaxError, ValueError, EOFError)):
            damage = "damaged (truncated)" if "truncated" in reason else "damaged"
            problem = f"the picture is {damage}: {reason}. Save it again, or use another one."
        else:
            problem = f"the picture could not be read ({type(exc).__name__}: {reason})"
        raise gr.Error(f"{field}: {problem}", print_exception=False) from None


def drawn_as_base(cls: type) -> type:
    """A subclass the browser draws as its Gradio base component (it knows no other): Gradio names
    a template by its base class, and the base's class id finds its code in the page."""
    base = cls.__base__
    cls.is_template = True
    cls.get_component_class_id = classmethod(lambda c: base.get_component_class_id())
    return cls


@drawn_as_base
class BoundedImage(gr.Image):
    """gr.Image that checks the picture's size before decoding it."""

    def preprocess(self, payload: Any) -> Any:
        check_picture(self.elem_id or "image", payload)
        return decoded(self.elem_id or "image", lambda: super(BoundedImage, self).preprocess(payload))


@drawn_as_base
class BoundedImageEditor(gr.ImageEditor):
    """gr.ImageEditor with bounded layers and blob storage; sizes checked before decoding."""

    # No __init__ of its own: Gradio reads a component's settings from its constructor's signature.
    MASK_OPACITY = MASK_OPACITY  # for a see-through mask brush: gr.Brush(colors=[(colour, MASK_OPACITY)])

    # Deliberately not a Gradio server function (no `@server` mark): Gradio then answers 404 to any
    # call of it, so nobody can fill the blob store. The page's editor does not use it (its layers come
    # with the request, through the upload route's caps: studio/web/limits.py; a browser test checks
    # the page makes no such call). The bounds below stay for a Gradio that would serve it.
    def accept_blobs(self, data: Any) -> None:
        if not isinstance(self.blob_storage, OrderedDict):  # oldest first, to drop the oldest set
            self.blob_storage = OrderedDict(self.blob_storage)
        blob = data.data
        index = blob.get("index")
        index = None if index in (None, "", "null") else index
        field = self.elem_id or "editor"
        if index is not None and (not str(index).isdigit() or int(index) >= MAX_LAYERS):
            raise gr.Error(f"{field}: layer {str(index)[:20]!r} is not valid; allowed: 0 to {MAX_LAYERS - 1}",
                           print_exception=False)
        if blob.get("type") not in ("layer", "background", "composite"):
            raise gr.Error(f"{field}: blob type {str(blob.get('type'))[:20]!r} is not valid", print_exception=False)
        content = data.files[0][1] if data.files else b""
        if len(content) > MAX_BLOB_BYTES:
            raise gr.Error(f"{field}: {len(content)} bytes is not valid; allowed: at most {MAX_BLOB_BYTES}",
                           print_exception=False)
        check_picture(field, content)
        key = blob.get("id")
        if key in self.blob_storage:
            self.blob_storage.move_to_end(key)
        super().accept_blobs(data)
        while len(self.blob_storage) > MAX_BLOB_SETS:
            self.blob_storage.popitem(last=False)

    def preprocess(self, payload: Any) -> Any:
        field = self.elem_id or "editor"
        if payload is not None:
            stored = self.blob_storage.get(payload.id) if payload.id is not None else None
            source = stored if stored is not None else payload
            layers = list(source.layers or [])
            if len(layers) > MAX_LAYERS:
                raise gr.Error(f"{field}: {len(layers)} layers is not valid; allowed: at most {MAX_LAYERS}",
                               print_exception=False)
            for picture in (source.background, source.composite, *layers):
                check_picture(field, picture)
        return decoded(field, lambda: super(BoundedImageEditor, self).preprocess(payload))
