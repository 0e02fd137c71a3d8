"""What the page's events do: Gradio-aware functions between the widgets and the engine.

page.py lays out the page and wires events to these. Per-user state only travels in the events'
own values (gr.State, gr.Request's session id): nothing here remembers one user for another.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import anyio
import gradio as gr

from .. import loras, models
from ..engine.interface import Engine
from ..errors import InvalidValue, StudioError
from ..families import family
from ..fields import TABLE, FieldTable
from ..request import family_sampler_names
from ..sizes import snap, size_for_aspect
from ..tasks import TASKS
from .control_view import Controls
from ..service import NOTHING_TO_STOP, Service, SessionJobs
from .calls import as_gradio_error, click, session_of
from .queue_guard import QueueGuard, visitor
from .restore import fit_to_model
from .sessions import History, HistorySigner, own_history
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
    settings["sd_upscale"] = bool(settings.get("sd_upscale")) and task == "img2img"  # Image to image's panel
    for tab, name, what in (("upscale", "upscale_image", "upscale"), ("outpaint", "outpaint_image", "extend")):
        if task != tab:  # the Upscale and Outpaint tabs' pictures are their own (upscale_view, outpaint_view)
            settings[name] = None
        elif settings.get(name) is None:
            raise InvalidValue(name, None, f"a picture to {what} (drop one on the {TASKS[tab].title} tab)")
    return settings


def task_images(task: str, init_image: Any, editor: Any, mask: Any) -> dict[str, Any]:
    """The init image and mask the page's tab gives: Image to image takes its picture; Inpaint
    takes its editor's picture and the strokes drawn on it (any colour), or an uploaded mask."""
    if task not in TASKS:
        raise InvalidValue("task", task, list(TASKS))
    if task in ("txt2img", "edit", "upscale", "outpaint"):  # Edit's are its references; Upscale, Outpaint: their own
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
    """What was painted on the editor's layers, as one grey mask (None if nothing was). The page's brush
    paints see-through (bounded.MASK_OPACITY): its strokes' alpha is read at full strength, white."""
    from PIL import ImageChops

    from .bounded import MASK_OPACITY

    full = int(255 * MASK_OPACITY)  # a stroke's alpha (127 at 0.5)
    strength = [min(255, round(alpha * 255 / full)) for alpha in range(256)]
    combined = None
    for layer in layers:
        if layer is None:
            continue
        # Any colour counts: a layer's alpha says where it was painted.
        grey = layer.getchannel("A").point(strength) if layer.mode in ("RGBA", "LA") else layer.convert("L")
        grey = grey.resize(size) if grey.size != size else grey
        combined = grey if combined is None else ImageChops.lighter(combined, grey)
    if combined is None or combined.getbbox() is None:
        return None
    return combined


def make_generate(service: Service, form: Form, editor: Any, tab_key: Any, shown: dict[str, Any],
                  controls: Controls | None = None, edits: Any = None) -> Callable[..., Iterator[dict]]:
    """The page's Generate: every form component in (by name), the result components out.
    `shown` maps gallery, infotext, seed, status, preview and history to their components; the
    run and the history belong to the visitor (session id and the tab's key)."""
    names = form.component_names()
    table = form.table

    def generate(data: dict, request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator[dict]:
        values = {names[component]: value for component, value in data.items() if component in names}
        key = data.get(tab_key) or ""
        first = True
        try:
            try:
                history = own_history(data.get(shown["history"]), key)
                settings = page_settings(values, data.get(editor), table)
                if controls is not None:  # ControlNet units and image prompts
                    settings.update(controls.settings(data))
                if edits is not None and settings.get("task") == "edit":  # the Edit tab's reference pictures
                    settings.update(edits.settings(data))
            except StudioError as exc:
                raise as_gradio_error(exc) from None
            caller = visitor(session_of(request, object()), key)
            for view in click(service, caller, settings, history, progress, table):
                update: dict[Any, Any] = {shown["status"]: view.status}
                if first:  # a new Generate: the result area describes no old image any more (the
                    # preview takes the picture's place: the infotext and seed come with the image)
                    update.update({shown["picked"]: None, shown["picked_seed"]: None, shown["infotext"]: "",
                                   shown["seed"]: "", shown["gallery"]: gr.Gallery([], visible=False)})
                    first = False
                if "preview" in view.changed and not view.images:
                    update[shown["preview"]] = view.preview  # the result area: JPEG-encoded by the component
                if "images" in view.changed:
                    # The preview turns into the final image (the first of the click, as its infotext).
                    # The gallery shows when there is more than one image to pick from (a batch).
                    update.update({shown["gallery"]: gr.Gallery(list(view.images), visible=len(view.images) > 1),
                                   shown["infotext"]: view.infotext,
                                   shown["seed"]: view.seed, shown["history"]: History(key, tuple(view.history)),
                                   shown["preview"]: view.images[0], shown["picked_seed"]: view.seed})
                    if controls is not None:  # the control maps it used, beside their units' pictures
                        update.update(controls.used_maps(data, view.control_maps))
                yield update
        except gr.Error as exc:  # the message where the result is, not only in a toast
            yield {shown["status"]: f"⚠ {exc.message}"}
            raise

    return generate


def make_stop(jobs: SessionJobs, guard: QueueGuard) -> Callable[..., Awaitable[str]]:
    async def stop(key: str = "", request: gr.Request = None) -> str:
        """Stop your own work: your requests still waiting for the GPU are removed before they start, and
        your running generation (with its remaining batches) ends at its next step; nobody else's.

        Parameters:
            key: the page's tab key (one tab's work); API clients leave it "" to stop their own calls
        Returns:
            status: what was stopped, e.g. "Stopped at step 3/20. Removed from the queue." or "Nothing to stop."
        """
        # The API's Stop; the page's goes through its WebSocket (studio/web/connections.py).
        return await stop_visitor(jobs, guard, getattr(request, "session_hash", None), key,
                                  session_of(request, object()))

    return stop


async def stop_visitor(jobs: SessionJobs, guard: QueueGuard, session: str | None, key: Any,
                       caller: str | None = None) -> str:
    """Stop a visitor's own work, nobody else's: their requests still waiting in the queue are removed
    before they start, and their running generation (with its remaining batches) ends at its next
    step. The visitor is the session id and the tab key (empty for API clients)."""
    key = key if isinstance(key, str) else ""
    dropped = await guard.drop(session, key)
    reply = await anyio.to_thread.run_sync(jobs.stop, visitor(caller if caller is not None else session, key))
    if not dropped:
        return reply
    waiting = "Removed from the queue" + (f" ({dropped} waiting requests)." if dropped > 1 else ".")
    return waiting if reply == NOTHING_TO_STOP else f"{reply} {waiting}"


def waiting_text(ahead: int, eta_s: float | None) -> str:
    about = f", about {eta_s:.0f} s" if eta_s is not None else ""
    return f"Waiting: {ahead} ahead{about}" if ahead else f"Waiting: next{about}"


def make_queue_line(jobs: SessionJobs, guard: QueueGuard, slots: int = 1) -> Callable[[str, str], str | None]:
    """While a tab's Generate waits for the GPU: "Waiting: 2 ahead, about 40 s" (the running runs' ETA
    plus the typical run time of each request ahead, shared by the `slots` that run at once: one per
    replica) for its status line (the queue socket's, connections.queue_route); None once it has
    started, or was never queued."""

    def queue_line(session: str, key: str) -> str | None:
        place = guard.place(session, key)  # requests waiting ahead of this one
        if place is None:
            return None
        running, typical = jobs.busy(), jobs.typical_s()
        eta = None if running is None and typical is None else ((running or 0.0) + place * (typical or 0.0)) / slots
        return waiting_text(place + jobs.running_total(), eta)

    return queue_line


def selected_infotext(paths: list[str] | None, evt: gr.SelectData) -> tuple[str, str | None, int | None]:
    """The infotext of the image clicked in a gallery, its path and its own seed."""
    from ..infotext import parse_infotext
    from ..metadata import MetadataError, read_png

    items = paths or []
    if not isinstance(evt.index, int) or not 0 <= evt.index < len(items):
        return "", None, None
    item = items[evt.index]
    path = item[0] if isinstance(item, (list, tuple)) else item  # Gallery values are (image, caption)
    try:
        meta = read_png(path)
    except MetadataError as exc:
        return str(exc), None, None
    text = meta.infotext or meta.message
    seed = parse_infotext(text).params.get("Seed", "") if meta.infotext else ""
    return text, str(path), int(seed) if str(seed).isdigit() else None


def history_picked(paths: list[str] | None, evt: gr.SelectData) -> tuple[str, str | None]:
    """A history image clicked: its infotext and path (what Restore reads)."""
    text, path, _ = selected_infotext(paths, evt)
    return text, path


def show_picked(paths: list[str] | None, evt: gr.SelectData) -> tuple[Any, ...]:
    """A gallery image clicked: its infotext, path and seed, shown in the result area."""
    text, path, seed = selected_infotext(paths, evt)
    if path is None:
        return text, None, gr.skip(), gr.skip(), gr.skip()
    return text, path, seed, path, seed


def picked_image(gallery: list | None, picked: str | None) -> str:
    """The gallery image to send on: the one clicked, else the first."""
    paths = [item[0] if isinstance(item, (list, tuple)) else item for item in (gallery or [])]
    if picked and picked in paths:
        return picked
    if not paths:
        raise gr.Error("Generate an image first.", print_exception=False)
    return paths[0]


def init_picture(image: Any) -> Any:
    """The Image to image tab's picture, for a ControlNet unit."""
    if image is None:
        raise gr.Error("Load a picture in Image to image first.", print_exception=False)
    return image


def history_view(history: History | None, key: str | None = "") -> list[str]:
    return [p for p in own_history(history, key) if Path(p).is_file()]


def make_history_view(signer: HistorySigner) -> Callable[..., tuple[list[str], list[str]]]:
    def view(history: History | None, key: str | None = "", owner: str | None = "") -> tuple[list[str], list[str]]:
        """The tab's history gallery, and the same paths signed for the tab's owner to keep."""
        paths = history_view(history, key)
        return paths, signer.sign(paths, owner)

    return view


def reopened_history(paths: tuple[str, ...], key: str) -> tuple[History, list[str]]:
    """A reloaded tab takes back the history its browser kept (paths checked by the caller)."""
    return History(key or "", paths), list(paths)


def hires_label(on: bool, scale: float, upscaler: str) -> Any:
    """The Hires fix accordion says when it is on, closed or open."""
    label = f"Hires fix · on ({scale:g}x, {upscaler})" if on else "Hires fix"
    return gr.Accordion(label=label)


def runs_on(studio: Engine) -> str:
    """The page's "Runs on" line (#runs-on): the device of this studio, or of every replica of a cluster."""
    cards = studio.devices()
    if not cards:
        return "Runs on a Ray cluster whose replicas did not answer yet: reload the page to ask again."
    if len(cards) == 1 and not cards[0].replica:
        return f"Runs on {html.escape(cards[0].line())}."
    lines = "\n".join(f"- {html.escape(card.line())}" for card in cards)
    return f"Runs on {len(cards)} replica{'s' if len(cards) != 1 else ''}:\n{lines}"


def model_choices(studio: Engine, models_dir: str | Path | None, allow_pickle: bool) -> list[tuple[str, str]]:
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


MODEL_DEFAULTS = tuple(f.name for f in TABLE.from_model)  # the settings a model recommends


def model_form_updates(model: str) -> dict[str, Any]:
    """Updates by field name that apply a model's recommended settings (its preset's defaults) and
    its size range."""
    source = models.resolve_model(model)
    defaults = TABLE.model_defaults(source)
    updates = {name: gr.update(value=defaults[name]) for name in MODEL_DEFAULTS}
    low, high = source.size_range
    for name in ("width", "height"):
        updates[name] = gr.update(value=defaults[name], minimum=low, maximum=high, step=source.size_rule.multiple)
    # The samplers of the model's kind (FLUX: flow-matching ones); a model not known yet keeps SD's.
    updates["sampler"] = gr.update(value=defaults["sampler"], choices=family_sampler_names(source.family))
    updates["cfg_scale"] = gr.update(value=defaults["cfg_scale"], **guidance_label(source))
    updates["model"] = gr.update(value=model if not source.preset else source.name)
    return updates


def recommended(source: models.ModelSource) -> str:
    d = source.defaults
    return f"{d.steps} steps · CFG {d.cfg_scale:g} · {d.sampler} · {d.width}×{d.height}"


def model_switch(model: str, current: dict[str, Any]) -> tuple[dict[str, Any], str, bool]:
    """Picking a model keeps the user's sampler, steps, CFG and size where they fit it, changes what
    does not (saying what and why: `fit_to_model`), and offers its recommended settings: (updates by
    field name, the note, whether the recommended settings differ from the form's)."""
    source = models.resolve_model(model)
    rec = TABLE.model_defaults(source)
    fitted, changed = fit_to_model(source, current)
    updates = {name: gr.update(**change) for name, change in fitted.items()}
    kept = {**current, **{name: change["value"] for name, change in fitted.items() if "value" in change}}
    differs = any(kept.get(name) != rec[name] for name in MODEL_DEFAULTS)
    note = f"Recommended for {source.name}: {recommended(source)}." if differs else ""
    if changed:
        note = "Changed to fit the model: " + "; ".join(changed) + ". " + note
    task = own_task(source)
    if task:
        updates["task"] = task
    return updates, note.strip(), differs


def own_task(source: models.ModelSource) -> str | None:
    """The only task a model runs, whose tab it opens (an edit-only model: edit); None for the rest."""
    return "edit" if source.family and family(source.family).needs_references else None


def image_size(image: Any, model: str) -> tuple[Any, Any]:
    """Width and height from a dropped picture (A1111's "Resize to" starts there), rounded to the
    model's multiple and kept in its range."""
    if image is None or not hasattr(image, "size"):
        return gr.skip(), gr.skip()
    try:
        source = models.resolve_model(model)
    except StudioError:
        return gr.skip(), gr.skip()
    width, height = (snap(side, *source.size_range, source.size_rule.multiple) for side in image.size)
    return gr.update(value=width), gr.update(value=height)


def aspect_name(width: Any, height: Any) -> str | None:
    """The aspect-ratio preset a size is (after Swap), or None when it is none of them."""
    from ..sizes import ASPECT_RATIOS

    if not isinstance(width, (int, float)) or not isinstance(height, (int, float)) or not width or not height:
        return None
    # Sizes snap to the model's multiple, so a preset's size is near its ratio (88x48 is "16:9").
    ratio = width / height
    name, (a, b) = min(ASPECT_RATIOS.items(), key=lambda item: abs(ratio - item[1][0] / item[1][1]))
    return name if abs(ratio / (a / b) - 1) < 0.05 else None


def aspect_size(ratio: str, model: str) -> tuple[Any, Any]:
    """Width and height for an aspect-ratio preset, keeping the model's default pixel count."""
    try:
        source = models.resolve_model(model)
        d = source.defaults
        width, height = size_for_aspect(ratio, d.width * d.height, *source.size_range, source.size_rule.multiple)
    except StudioError as exc:
        raise as_gradio_error(exc) from None
    return gr.update(value=width), gr.update(value=height)


def lora_names(loras_dir: str | Path | None) -> list[str]:
    return loras.available(loras_dir)


def lora_hint(loras_dir: str | Path | None) -> str:
    """What the LoRA picker says: where LoRAs come from, and how to add some when there are none."""
    if loras_dir is None:
        return "no loras folder: start the studio with --loras <folder> to pick LoRAs here"
    if not lora_names(loras_dir):
        return f"no LoRAs yet: put .safetensors files in {loras_dir} and press ↻"
    return "from the loras folder; adds <lora:name:weight> to the prompt"
