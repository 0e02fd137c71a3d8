"""The `/generate` HTTP API: its parameters, their types and defaults come from the field table.

It is a `gr.api` endpoint of its own, not the page's Generate event, so the API is shaped by the
settings and not by the page: integers are integers, a choice among fixed names is an enum
(`Literal`), `model` is free text, ranges and defaults follow the model requested (a field whose
default comes from the model defaults to None = "the model's own"), every parameter is described
from its field (label, help, range), and every error names the field. It streams like the page:
each update is (images, infotext, seed, status, preview), named and described in RESULTS, the images
as PNG files with their metadata and the preview as a JPEG file; the last update carries the last
preview of the run (None if none). `documented_api` registers it (and `/stop`) so that
`gradio_client`'s `view_api()` shows those descriptions and names.
"""

from __future__ import annotations

import inspect
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional, TypedDict

import gradio as gr
from gradio import utils as gradio_utils
from gradio.context import get_blocks_context
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
# Each update's values, in OUTPUTS' order: their names and what they hold (view_api shows both).
RESULTS: tuple[tuple[str, str], ...] = (
    ("images", "the images finished so far, as PNG files with their metadata: [{image: file, caption: None}, ...]"),
    ("infotext", "the first image's generation parameters as A1111 writes them (\"\" until an image is done)"),
    ("seed", "the first image's seed (None until it is known)"),
    ("status", "what the run is doing: its queue place, Step k/n · it/s · ETA, or how it ended"),
    ("preview", "a live preview as a JPEG file on the updates that send a new one (at most two a second), else "
                "None; the last update carries the run's last preview"),
)


# Left out, these mean what the server runs now rather than the table's default: a studio started on
# `--model X` generates with X for a client that names no model, as A1111 uses its loaded checkpoint.
SERVER_DEFAULTS = frozenset({"model"})


def api_type(field: Field) -> Any:
    """A field's API type: a choice among names is a `Literal` of them (read once, as the app starts:
    the server still checks each value against the live list, and accepts A1111's aliases)."""
    choices = tuple(field.choice_list()) if field.choices is not None else ()
    if choices and field.kind == "choice":
        return Literal[choices]
    if choices and field.kind == "names":
        return list[Literal[choices]]
    return API_TYPES[field.kind]


def api_parameter(field: Field) -> inspect.Parameter:
    """The API parameter of a field: its type, and its default (None where the model or the server
    decides)."""
    annotation = api_type(field)
    default = field.default
    if default is FROM_MODEL or default is None or field.name in SERVER_DEFAULTS:
        annotation, default = Optional[annotation] if field.kind != "image" else annotation, None
    elif isinstance(default, tuple):
        default = list(default)
    return inspect.Parameter(field.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                             annotation=annotation)


def _amounts(field: Field) -> str:
    """What a number may be, as the request's own errors word it."""
    if field.model_range:
        return "a multiple of 8 in the model's size range"
    if field.range is None:
        return ""
    low, high = field.range
    what = f"a number from {low:g} to {high:g}" if field.kind == "float" else f"an integer from {int(low)} to {int(high)}"
    said = "=" in field.label + field.help  # "Seed (-1 = random)": the note is said already
    return what + ("" if said else field.range_note)


def parameter_description(field: Field) -> str:
    """One line on a parameter for API clients: the field's label, help and range, and what None means."""
    parts = [field.label, field.help, _amounts(field)]
    if field.name in SERVER_DEFAULTS:
        parts.append("None: the model this studio runs")
    elif field.default is FROM_MODEL:
        parts.append("None: the requested model's default")
    if field.kind == "image":
        parts.append("an image file (gradio_client: handle_file('photo.png'))")
    return "; ".join(p for p in parts if p).replace("\n", " ")


def api_docstring(table: FieldTable = TABLE) -> str:
    """`/generate`'s docstring, in the layout Gradio reads: a description, then `Parameters:` and
    `Returns:` lines of `name: text` (documented_api shows them in view_api)."""
    return "\n".join([
        "Generate images with the settings of the field table; streams (images, infotext, seed, status, preview) "
        "while it runs.",
        "",
        "Parameters:",
        *(f"    {f.name}: {parameter_description(f)}" for f in table.api),
        "Returns:",
        *(f"    {name}: {text}" for name, text in RESULTS),
    ])


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
    generate.__doc__ = api_docstring(table)
    return generate


def documented_api(fn: Callable, **options: Any) -> Any:
    """`gr.api(fn, **options)`, its view_api as fn's docstring says: each `Parameters:` line
    (`name: text`) describes that parameter, each `Returns:` line names and describes an output.
    Gradio 6 reads only a `gr.api` docstring's first part (the endpoint's description), names the
    outputs "1st", "2nd", ..., and reads a string annotation (`from __future__ import annotations`)
    as no type: the annotations are resolved first, and each input's and output's label and schema
    set after."""
    fn.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    dependency = gr.api(fn, **options)
    _, described, returns = gradio_utils.get_function_description(fn)
    names = [name for name, *_ in gradio_utils.get_function_params(fn)]  # as gr.api made its inputs
    blocks = get_blocks_context()
    inputs = [blocks.blocks[i] for i in dependency["inputs"]]
    outputs = [blocks.blocks[i] for i in dependency["outputs"]]
    results = [line.partition(":") for line in returns]
    if len(results) != len(outputs) or not all(sep for _, sep, _ in results):
        raise ValueError(f"{getattr(fn, '__name__', fn)}: its docstring's Returns: needs one 'name: text' line "
                         f"for each of its {len(outputs)} outputs, not {returns}")
    for component, name in zip(inputs, names, strict=True):
        _describe(component, name, "additional_description", described.get(name, ""))
    for component, (name, _, text) in zip(outputs, results):
        _describe(component, name.strip(), "description", text.strip())
    return dependency


def _describe(component: Any, label: str, key: str, text: str) -> None:
    """Gradio's private detail, in one place: a `gr.api` input or output is a `gradio.components.Api`
    whose label view_api shows as its name and whose `_api_info` is its JSON schema; view_api shows an
    input's "additional_description" and an output's "description"."""
    component.label = label
    if text:
        component._api_info = {**component.api_info(), key: text}


def _outputs(view: RunView, preview: Path | None) -> tuple:
    gallery = [{"image": file_data(path), "caption": None} for path in view.images]
    return gallery, view.infotext or "", view.seed, view.status, file_data(preview) if preview else None
