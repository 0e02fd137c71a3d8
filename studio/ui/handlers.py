"""What the page's events do: Gradio-aware functions between the widgets and the engine.

page.py lays out the page and wires events to these. Per-user state only travels in the events'
own values (gr.State, gr.Request's session id): nothing here remembers one user for another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import anyio
import gradio as gr

from .. import loras, models, validation
from ..engine import Studio
from ..errors import InvalidValue, StudioError
from ..fields import TABLE, FieldTable
from ..request import family_sampler_names
from ..outputs import OutputFolder
from ..sizes import size_for_aspect
from ..tasks import TASKS
from .runs import as_gradio_error, run_click, session_of
from .queue_guard import QueueGuard, visitor
from .sessions import NOTHING_TO_STOP, History, SessionJobs, own_history
from .widgets import Form, guidance_label

EDITOR_FIELDS = ("init_image", "mask")  # what the Inpaint editor stands for on the page


def page_settings(values: dict[str, Any], editor: Any, table: FieldTable = TABLE) -> dict[str, Any]:
    """Settings by field name from the page's widgets. The open tab is the task: it takes the
    images it needs (the Inpaint tab's from its editor) and hires fix belongs to Text to image."""
    settings = {name: value for name, value in values.items() if name in table}
    task = settings.get("task") or "txt2img"
    images = task_images(task, settings.get("init_image"), editor, settings.get("mask"))
    for name in EDITOR_FIELDS:
        settings[name] = images.get(name)
    settings["hires"] = bool(settings.get("hires")) and task == "txt2img"
    return settings


def task_images(task: str, init_image: Any, editor: Any, mask: Any) -> dict[str, Any]:
    """The init image and mask the page's tab gives: Image to image takes its picture; Inpaint
    takes its editor's picture and the strokes drawn on it (any colour), or an uploaded mask."""
    if task not in TASKS:
        raise InvalidValue("task", task, list(TASKS))
    if task == "txt2img":
        return {}
    editor = editor if isinstance(editor, dict) else {}
    background = editor.get("background")
    if task == "img2img":
        image = init_image if init_image is not None else background
        if image is None:
            raise InvalidValue("init_image", None, "an image to start from (Image to image needs one)")
        return {"init_image": image}
    image = background if background is not None else init_image
    if image is None:
        raise InvalidValue("init_image", None, "a picture to inpaint (load one into the Inpaint editor)")
    if mask is None:
        mask = drawn_mask(editor.get("layers") or [], image.size)
    if mask is None:
        raise InvalidValue("mask", None, "strokes drawn over the picture (or an uploaded mask) marking what to repaint")
    return {"init_image": image, "mask": mask}


def drawn_mask(layers: list[Any], size: tuple[int, int]) -> Any:
    """What was painted on the editor's layers, as one grey mask (None if nothing was)."""
    from PIL import ImageChops

    combined = None
    for layer in layers:
        if layer is None:
            continue
        # Any colour counts: a layer's alpha says where it was painted.
        grey = layer.getchannel("A") if layer.mode in ("RGBA", "LA") else layer.convert("L")
        grey = grey.resize(size) if grey.size != size else grey
        combined = grey if combined is None else ImageChops.lighter(combined, grey)
    if combined is None or combined.getbbox() is None:
        return None
    return combined


def make_generate(studio: Studio, outputs: OutputFolder, jobs: SessionJobs, form: Form, editor: Any,
                  tab_key: Any, shown: dict[str, Any]) -> Callable[..., Iterator[dict]]:
    """The page's Generate: every form component in (by name), the result components out.
    `shown` maps gallery, infotext, seed, status, preview and history to their components; the
    run and the history belong to the visitor (session id and the tab's key)."""
    names = form.component_names()
    table = form.table

    def generate(data: dict, request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator[dict]:
        values = {names[component]: value for component, value in data.items() if component in names}
        key = data.get(tab_key) or ""
        try:
            history = own_history(data.get(shown["history"]), key)
            settings = page_settings(values, data.get(editor), table)
        except StudioError as exc:
            raise as_gradio_error(exc) from None
        for view in run_click(studio, outputs, jobs, lambda run: visitor(session_of(request, run), key), settings,
                              list(history), progress, table):
            update: dict[Any, Any] = {shown["status"]: view.status}
            if "preview" in view.changed:
                update[shown["preview"]] = view.preview  # JPEG-encoded by the component
            if "images" in view.changed:
                update.update({shown["gallery"]: list(view.images), shown["infotext"]: view.infotext,
                               shown["seed"]: view.seed, shown["history"]: History(key, tuple(view.history))})
            yield update

    return generate


def make_stop(jobs: SessionJobs, guard: QueueGuard) -> Callable[..., Awaitable[str]]:
    async def stop(key: str = "", request: gr.Request = None) -> str:
        """Stop the caller's own work, nobody else's: their requests still waiting in the queue are
        removed before they start, and their running generation (with its remaining batches) ends
        at its next step. The caller is the session id and the tab key (empty for API clients)."""
        key = key if isinstance(key, str) else ""
        session = getattr(request, "session_hash", None)
        dropped = await guard.drop(session, key)
        reply = await anyio.to_thread.run_sync(jobs.stop, visitor(session_of(request, object()), key))
        if not dropped:
            return reply
        waiting = f"{dropped} waiting request{'s' if dropped > 1 else ''} removed before starting."
        return waiting if reply == NOTHING_TO_STOP else f"{reply} {waiting}"

    return stop


def make_parse_prompt(studio: Studio) -> Callable[..., dict]:
    """The handler behind `/parse_prompt`: the parsed view of a prompt, as JSON."""

    def parse_prompt(prompt: str, prompt_syntax: str = "A1111", model: str = TABLE["model"].default) -> dict:
        """Fragments with their final weights, tokens in each 75-token chunk, and warnings."""
        try:
            view = studio.describe_prompt(prompt or "", validation.text("model", model), prompt_syntax)
        except StudioError as exc:
            raise as_gradio_error(exc) from None
        return {
            "fragments": [{"text": text, "weight": round(weight, 4)} for text, weight in view.fragments],
            "chunk_tokens": list(view.chunk_tokens) if view.chunk_tokens is not None else None,
            "warnings": list(view.warnings),
            "token_limit": view.token_limit,
        }

    return parse_prompt


def token_counter(view: dict | None) -> str:
    """A1111's counter: tokens used in each 75-token chunk of the prompt."""
    view = view if isinstance(view, dict) else {}
    counts = view.get("chunk_tokens")
    counts = counts if isinstance(counts, list) and all(isinstance(c, int) for c in counts) else None
    warnings = len(view.get("warnings") or []) if isinstance(view.get("warnings"), list) else 0
    note = f" · ⚠ {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    if counts is None:
        return f"Tokens: counted once the model is loaded{note}"
    limit = view.get("token_limit")
    if isinstance(limit, int) and not isinstance(limit, bool):  # one sequence (FLUX's T5), no chunks
        return f"Tokens: {sum(counts)}/{limit}{note}"
    chunks = " · ".join(f"{c}/75" for c in counts) or "0/75"
    many = f" ({len(counts)} chunks)" if len(counts) > 1 else ""
    return f"Tokens: {chunks}{many}{note}"


def selected_infotext(paths: list[str] | None, evt: gr.SelectData) -> tuple[str, str | None]:
    """The infotext of the image clicked in a gallery, and its path."""
    from ..metadata import MetadataError, read_png

    items = paths or []
    if not isinstance(evt.index, int) or not 0 <= evt.index < len(items):
        return "", None
    item = items[evt.index]
    path = item[0] if isinstance(item, (list, tuple)) else item  # Gallery values are (image, caption)
    try:
        meta = read_png(path)
    except MetadataError as exc:
        return str(exc), None
    return meta.infotext or meta.message, str(path)


def picked_image(gallery: list | None, picked: str | None) -> str:
    """The gallery image to send on: the one clicked, else the first."""
    paths = [item[0] if isinstance(item, (list, tuple)) else item for item in (gallery or [])]
    if picked and picked in paths:
        return picked
    if not paths:
        raise gr.Error("Generate an image first.", print_exception=False)
    return paths[0]


def history_view(history: History | None, key: str | None = "") -> list[str]:
    return [p for p in own_history(history, key) if Path(p).is_file()]


def model_choices(studio: Studio, models_dir: str | Path | None, allow_pickle: bool) -> list[tuple[str, str]]:
    """The model dropdown: presets, then checkpoints in the models folder; loaded ones marked."""

    def label(text: str, model: str) -> str:
        try:
            loaded = studio.is_loaded(model)
        except StudioError:
            loaded = False
        return f"{text} ● loaded" if loaded else text

    choices = [(label(name, name), name) for name in models.preset_names()]
    choices += [(label(f"{name} (models folder)", path), path)
                for name, path in models.local_models(models_dir, allow_pickle)]
    return choices


MODEL_DEFAULTS = ("sampler", "schedule", "steps", "cfg_scale", "width", "height")  # a preset's defaults


def model_form_updates(model: str) -> dict[str, Any]:
    """Updates by field name from a model's preset: its defaults, and its size range."""
    source = models.resolve_model(model)
    defaults = vars(source.defaults)
    updates = {name: gr.update(value=defaults[name]) for name in MODEL_DEFAULTS}
    low, high = source.size_range
    for name in ("width", "height"):
        updates[name] = gr.update(value=defaults[name], minimum=low, maximum=high, step=source.size_rule.multiple)
    # The samplers of the model's kind (FLUX: flow-matching ones); a model not known yet keeps SD's.
    updates["sampler"] = gr.update(value=defaults["sampler"], choices=family_sampler_names(source.family))
    updates["cfg_scale"] = gr.update(value=defaults["cfg_scale"], **guidance_label(source))
    updates["model"] = gr.update(value=model if not source.preset else source.name)
    return updates


def aspect_size(ratio: str, model: str) -> tuple[Any, Any]:
    """Width and height for an aspect-ratio preset, keeping the model's default pixel count."""
    try:
        source = models.resolve_model(model)
        d = source.defaults
        width, height = size_for_aspect(ratio, d.width * d.height, *source.size_range)
    except StudioError as exc:
        raise as_gradio_error(exc) from None
    return gr.update(value=width), gr.update(value=height)


def lora_names(loras_dir: str | Path | None) -> list[str]:
    return loras.available(loras_dir)
