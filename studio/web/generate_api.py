"""The `/generate` HTTP API: its parameters, their types and defaults come from the field table.

It is a `gr.api` endpoint of its own, not the page's Generate event, so the API is shaped by the
settings and not by the page: integers are integers, `model` is free text, ranges and defaults
follow the model requested (a field whose default comes from the model defaults to None = "the
model's own"), and every error names the field. It streams like the page: each update is
(images, infotext, seed, status, live preview), the images as PNG files with their metadata and
the preview as a JPEG file; the last update carries the last preview of the run (None if none).
"""

from __future__ import annotations

import inspect
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypedDict

import gradio as gr
from gradio.data_classes import FileData
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidValue, StudioError
from ..fields import FROM_MODEL, TABLE, Field, FieldTable
from ..validation import image as check_image
from .queue_guard import visitor
from ..service import RunView, Service
from .calls import as_gradio_error, click, session_of

PREVIEW_QUALITY = 85
API_PREVIEW_INTERVAL_S = 0.5  # previews through the API: at most two a second
PREVIEW_MAX_AGE_S = 600  # preview files older than this are removed (Gradio keeps its own copies)


class GalleryImage(TypedDict):
    image: FileData
    caption: Optional[str]


# Field kind -> the API's Python type (gradio_client shows and sends these).
API_TYPES: dict[str, Any] = {
    "text": str, "model": str, "choice": str, "int": int, "float": float, "bool": bool,
    "names": list[str], "loras": list[tuple[str, float]], "image": Optional[FileData],
    "records": list[dict[str, Any]],  # each item an object of its record's fields (studio/field_spec.py)
}
OUTPUTS = tuple[list[GalleryImage], str, Optional[int], str, Optional[FileData]]


# Left out, these mean what the server runs now rather than the table's default: a studio started on
# `--model X` generates with X for a client that names no model, as A1111 uses its loaded checkpoint.
SERVER_DEFAULTS = frozenset({"model"})


def api_parameter(field: Field) -> inspect.Parameter:
    """The API parameter of a field: its type, and its default (None where the model or the server
    decides)."""
    annotation = API_TYPES[field.kind]
    default = field.default
    if default is FROM_MODEL or default is None or field.name in SERVER_DEFAULTS:
        annotation, default = Optional[annotation] if field.kind != "image" else annotation, None
    elif isinstance(default, tuple):
        default = list(default)
    return inspect.Parameter(field.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                             annotation=annotation)


def api_signature(table: FieldTable = TABLE) -> inspect.Signature:
    parameters = [api_parameter(f) for f in table.api]
    parameters.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                        annotation=gr.Request))
    return inspect.Signature(parameters, return_annotation=OUTPUTS)


def file_data(path: str | Path) -> dict[str, Any]:
    """A file handed back to the client (Gradio copies it into its cache and serves it)."""
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def open_image(name: str, value: Any) -> Image.Image | None:
    """An uploaded file (Gradio has checked it was uploaded) as a PIL image, its size checked
    from the header before anything is decoded."""
    if value is None:
        return None
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str):
        raise InvalidValue(name, type(value).__name__, "an image file (gradio_client: handle_file('photo.png'))")
    try:
        picture = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidValue(name, Path(path).name, f"an image file ({type(exc).__name__})") from None
    check_image(name, picture)
    return ImageOps.exif_transpose(picture)  # as the page's image upload does


def item_images(field: Field, items: Any) -> Any:
    """A records field's items (ControlNet units, image prompts) with their uploaded pictures opened
    (each checked as any input image)."""
    if not isinstance(items, list):
        return items
    pictures = [f.name for f in field.items.fields if f.kind == "image"]
    return [{**item, **{name: open_image(f"{field.name}[{i}].{name}", item[name]) for name in pictures
                        if item.get(name) is not None}}
            if isinstance(item, dict) else item for i, item in enumerate(items)]


class PreviewFiles:
    """The API's live previews as JPEG files, removed once Gradio has its copy."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="studio-api-previews-"))

    def write(self, image: Image.Image) -> Path:
        path = self.folder / f"{uuid.uuid4().hex}.jpg"
        image.convert("RGB").save(path, format="JPEG", quality=PREVIEW_QUALITY)
        return path

    def sweep(self) -> None:
        cutoff = time.time() - PREVIEW_MAX_AGE_S
        for old in self.folder.glob("*.jpg"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)


def make_generate_api(service: Service, table: FieldTable = TABLE,
                      server_model: Callable[[], str] | None = None) -> Callable[..., Iterator[tuple]]:
    """The `/generate` function: keyword parameters from the table, streaming OUTPUTS. A call that
    names no model gets `server_model()` (the model the studio started with, or fell back to)."""
    names = [f.name for f in table.api]
    images = {f.name for f in table.api if f.kind == "image"}
    records = [f for f in table.api if f.kind == "records"]
    previews = PreviewFiles()

    def generate(*args: Any) -> Iterator[tuple]:
        values = dict(zip(names, args))
        request = args[len(names)] if len(args) > len(names) else None
        try:
            settings = {name: open_image(name, value) if name in images else value for name, value in values.items()}
            for field in records:
                settings[field.name] = item_images(field, settings.get(field.name))
        except StudioError as exc:
            raise as_gradio_error(exc) from None
        if settings.get("model") is None and server_model is not None:
            settings["model"] = server_model()
        previews.sweep()
        shown: Path | None = None
        newest: Any = None  # the newest preview not sent yet
        last_sent = 0.0
        view = None
        for view in click(service, visitor(session_of(request, object()), ""), settings, table=table):
            # A preview file goes out once, on an update where it is new, and at most every
            # API_PREVIEW_INTERVAL_S: each one is copied by Gradio and downloaded by the client,
            # which on fast steps cost more than making it (the page shows previews at --preview-fps).
            if "preview" in view.changed:
                newest = view.preview
            send = newest is not None and time.monotonic() - last_sent >= API_PREVIEW_INTERVAL_S
            if send:
                previous, shown = shown, previews.write(newest)
                newest, last_sent = None, time.monotonic()
                if previous is not None:  # Gradio copied it when it was sent
                    previous.unlink(missing_ok=True)
            yield _outputs(view, shown if send else None)
        if newest is not None:  # a preview newer than the last one sent
            shown, send = previews.write(newest), False
        if view is not None and shown is not None and not send:
            yield _outputs(view, shown)  # the last update carries the run's last preview

    generate.__signature__ = api_signature(table)  # type: ignore[attr-defined]
    generate.__annotations__ = {p.name: p.annotation for p in generate.__signature__.parameters.values()
                                if p.annotation is not inspect.Parameter.empty}
    generate.__annotations__["return"] = OUTPUTS
    generate.__doc__ = ("Generate images. Streams (images, infotext, seed, status, live preview); every "
                        "parameter is a setting of the field table (see the README's field table).")
    return generate


def _outputs(view: RunView, preview: Path | None) -> tuple:
    gallery = [{"image": file_data(path), "caption": None} for path in view.images]
    return gallery, view.infotext or "", view.seed, view.status, file_data(preview) if preview else None
