"""What the page's events do: Gradio-aware functions between the widgets and the engine.

ui.py lays out the page and wires events to these. Per-user state only travels in the events'
own values (gr.State, gr.Request's session id): nothing here remembers one user for another.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr

from . import images, loras, models, prompts, samplers
from .engine import Studio
from .errors import InvalidValue, StudioError, UnknownName
from .events import Cancelled, Preview, Progress, Result, Status
from .metadata import FORM_TYPES, MetadataError, form_fields, read_png
from .outputs import OutputFolder
from .request import DEFAULT_MODEL, GenerationRequest
from .sessions import Run, SessionJobs
from .sizes import size_for_aspect
from .styles import apply_styles

log = logging.getLogger("studio")
HISTORY_LIMIT = 200  # images a session's history keeps (paths only: a few KB)

# The generation form's fields, in the order PNG Info and history send settings to them.
FORM_ORDER = tuple(FORM_TYPES)


def _error(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def status_line(event: Progress, batch: int = 0, batches: int = 1) -> str:
    prefix = f"Batch {batch + 1}/{batches} · " if batches > 1 else ""
    return (f"{prefix}Step {event.step}/{event.total} · {event.it_per_s:.2f} it/s · "
            f"ETA {event.eta_s:.1f}s · {event.elapsed_s:.1f}s elapsed")


def session_of(request: gr.Request | None, fallback: object) -> str:
    """The caller's session id (a browser tab or a gradio_client Client)."""
    session = getattr(request, "session_hash", None)
    return session if session else f"anonymous-{id(fallback)}"


def make_generate(studio: Studio, outputs: OutputFolder, jobs: SessionJobs):
    """The handler behind `/generate`. Its parameter names are the API's keyword parameters."""

    def generate(
        prompt: str,
        negative_prompt: str = "",
        model: str = DEFAULT_MODEL,
        sampler: str = "DPM++ 2M",
        schedule: str = samplers.AUTOMATIC,
        steps: int = 20,
        cfg_scale: float = 7.0,
        seed: int = -1,
        width: int = 512,
        height: int = 512,
        batch_size: int = 1,
        prompt_syntax: str = prompts.A1111,
        clip_skip: int = 1,
        preview: str = "auto",
        styles: list[str] | None = None,
        batch_count: int = 1,
        task: str = "txt2img",
        init_image: Any = None,
        inpaint: Any = None,
        mask: Any = None,
        denoising_strength: float = 0.75,
        resize_mode: str = "Just resize",
        mask_blur: int = 4,
        inpaint_mode: str = "Inpaint masked",
        masked_content: str = "original",
        inpaint_area: str = "Whole picture",
        masked_padding: int = 32,
        hires: bool = False,
        hires_scale: float = 2.0,
        hires_upscaler: str = "Latent",
        hires_steps: int = 0,
        hires_strength: float = 0.7,
        history: list[str] | None = None,
        request: gr.Request = None,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple[Any, ...]]:
        """Generate images; streams status while running, ends with images, infotext and seed.

        Yields (gallery, infotext, seed used, status, live preview, history). `history` is the
        session's own list of image paths (a gr.State: API clients never see it).
        """
        try:
            # Styles first: the final prompt is what is encoded, shown in the infotext and saved.
            prompt, negative_prompt = apply_styles(prompt or "", negative_prompt or "", styles or [])
            first = GenerationRequest(
                prompt=prompt, negative_prompt=negative_prompt, model=model, sampler=sampler,
                schedule=schedule, steps=steps, cfg_scale=cfg_scale, seed=seed,
                width=width, height=height, batch_size=batch_size,
                prompt_syntax=prompt_syntax, clip_skip=clip_skip, preview=preview,
                **task_images(task, init_image, inpaint, mask),
                denoising_strength=denoising_strength, resize_mode=resize_mode, mask_blur=mask_blur,
                inpaint_mode=inpaint_mode, masked_content=masked_content, inpaint_area=inpaint_area,
                masked_padding=masked_padding, hires=bool(hires) and task == "txt2img", hires_scale=hires_scale,
                hires_upscaler=hires_upscaler, hires_steps=hires_steps, hires_strength=hires_strength,
            )
            plan = first.batches(batch_count)
        except StudioError as exc:
            raise _error(exc) from None
        skip = gr.skip()
        run = Run()
        images: list[str] = []
        history = list(history or [])
        infotext, seed_used = skip, skip
        total_steps = len(plan) * first.steps
        with jobs.running(session_of(request, run), run):
            for n, batch in enumerate(plan):
                if run.cancelled:
                    break
                job = studio.generate(batch)
                run.start(job)
                events = iter(job)
                try:
                    for event in events:
                        if isinstance(event, Status):
                            progress(0, desc=event.message)
                            yield skip, skip, skip, event.message, skip, skip
                        elif isinstance(event, Progress):
                            progress((n * first.steps + event.step, total_steps), desc="Denoising", unit="steps")
                            yield skip, skip, skip, status_line(event, n, len(plan)), skip, skip
                        elif isinstance(event, Preview):
                            yield skip, skip, skip, skip, event.image, skip  # JPEG-encoded by the component
                        elif isinstance(event, Cancelled):
                            run.stopped_at = (event.step, event.total)
                            run.cancel()
                            yield skip, skip, skip, f"Stopped at step {event.step}/{event.total}.", skip, skip
                        elif isinstance(event, Result):
                            paths = [str(p) for p in outputs.save(event)]  # PNGs with metadata
                            images += paths
                            history = (paths[::-1] + history)[:HISTORY_LIMIT]  # newest first
                            if n == 0:
                                infotext, seed_used = event.infotexts[0], event.seed
                            notes = " ".join(event.notices)
                            where = f"Batch {n + 1}/{len(plan)} done" if len(plan) > 1 else "Done"
                            done = f"{where} in {event.timings.total_s:.1f}s (seed {event.seed}). {notes}".strip()
                            yield list(images), infotext, seed_used, done, skip, history
                except StudioError as exc:
                    raise _error(exc) from None
                except Exception as exc:  # keep serving; the message names what failed
                    log.exception("generation failed")
                    raise gr.Error(f"Generation failed: {type(exc).__name__}: {exc}") from None
                finally:
                    job.cancel()  # a Stop press or a closed connection ends the job, not just the stream
                    events.close()

    return generate


TASKS = ("txt2img", "img2img", "inpaint")


def task_images(task: str, init_image: Any, inpaint: Any, mask: Any) -> dict[str, Any]:
    """The request's init image and mask for the page's tab (or the API's `task`).

    txt2img ignores every image. img2img takes `init_image`. inpaint takes the image editor's
    picture and the strokes drawn on it (any colour, or an uploaded `mask` instead); API clients
    send `init_image` and `mask` (white = repaint).
    """
    if task not in TASKS:
        raise UnknownName("task", task, list(TASKS))
    if task == "txt2img":
        return {}
    editor = inpaint if isinstance(inpaint, dict) else {}
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
    from PIL import Image, ImageChops

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


def make_stop(jobs: SessionJobs) -> Callable[..., str]:
    def stop(request: gr.Request = None) -> str:
        """Stop the caller's own running generation (and its remaining batches); nobody else's."""
        return jobs.stop(session_of(request, object()))

    return stop


def make_parse_prompt(studio: Studio):
    """The handler behind `/parse_prompt`: the parsed view of a prompt, as JSON."""

    def parse_prompt(prompt: str, prompt_syntax: str = prompts.A1111, model: str = DEFAULT_MODEL) -> dict:
        """Fragments with their final weights, tokens in each 75-token chunk, and warnings."""
        try:
            view = studio.describe_prompt(prompt or "", model, prompt_syntax)
        except StudioError as exc:
            raise _error(exc) from None
        return {
            "fragments": [{"text": text, "weight": round(weight, 4)} for text, weight in view.fragments],
            "chunk_tokens": list(view.chunk_tokens) if view.chunk_tokens is not None else None,
            "warnings": list(view.warnings),
        }

    return parse_prompt


def token_counter(view: dict | None) -> str:
    """A1111's counter: tokens used in each 75-token chunk of the prompt."""
    counts = (view or {}).get("chunk_tokens")
    warnings = len((view or {}).get("warnings") or [])
    note = f" · ⚠ {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    if counts is None:
        return f"Tokens: counted once the model is loaded{note}"
    chunks = " · ".join(f"{c}/75" for c in counts) or "0/75"
    many = f" ({len(counts)} chunks)" if len(counts) > 1 else ""
    return f"Tokens: {chunks}{many}{note}"


def png_info(image: bytes | str | Path | None) -> tuple[str, dict]:
    """The handler behind `/png_info`: a PNG's parameters as text, and the settings they hold."""
    if not image:
        return "", {}
    try:
        meta = read_png(image)
    except MetadataError as exc:
        raise _error(exc) from None
    fields, notes = form_fields(meta)
    return meta.infotext or meta.message, {"message": meta.message, "fields": fields, "notes": notes}


def form_updates(found: dict | None) -> tuple[Any, ...]:
    """Form updates from PNG Info's settings, in FORM_ORDER; fields a PNG lacks stay as they are."""
    fields = (found or {}).get("fields", {})
    return tuple(gr.update(value=fields[name]) if name in fields else gr.skip() for name in FORM_ORDER)


def restore_from(path: str | None) -> tuple[Any, ...]:
    """Form updates that restore the settings of an image in the history."""
    if not path:
        raise gr.Error("Pick an image in the history first.", print_exception=False)
    return form_updates(png_info(path)[1])


def selected_infotext(paths: list[str] | None, evt: gr.SelectData) -> tuple[str, str | None]:
    """The infotext of the image clicked in a gallery, and its path."""
    items = paths or []
    if not isinstance(evt.index, int) or not 0 <= evt.index < len(items):
        return "", None
    item = items[evt.index]
    path = item[0] if isinstance(item, (list, tuple)) else item  # Gallery values are (image, caption)
    text, _ = png_info(path)
    return text, str(path)


def picked_image(gallery: list | None, picked: str | None) -> str:
    """The gallery image to send on: the one clicked, else the first."""
    paths = [item[0] if isinstance(item, (list, tuple)) else item for item in (gallery or [])]
    if picked and picked in paths:
        return picked
    if not paths:
        raise gr.Error("Generate an image first.", print_exception=False)
    return paths[0]


def send_to_img2img(gallery: list | None, picked: str | None) -> tuple[Any, ...]:
    """A result becomes the picture to start from, as A1111's "Send to img2img"."""
    return picked_image(gallery, picked), gr.Tabs(selected="img2img"), "img2img"


def send_to_inpaint(gallery: list | None, picked: str | None) -> tuple[Any, ...]:
    return picked_image(gallery, picked), gr.Tabs(selected="inpaint"), "inpaint"


def history_view(history: list[str] | None) -> list[str]:
    return [p for p in (history or []) if Path(p).is_file()]


def model_form_updates(model: str) -> tuple[Any, ...]:
    """Updates for (model, sampler, schedule, steps, cfg_scale, width, height) from a preset."""
    source = models.resolve_model(model)
    d = source.defaults
    low, high = source.size_range
    return (
        gr.update(value=model if not source.preset else source.name), gr.update(value=d.sampler),
        gr.update(value=d.schedule), gr.update(value=d.steps), gr.update(value=d.cfg_scale),
        gr.update(value=d.width, minimum=low, maximum=high), gr.update(value=d.height, minimum=low, maximum=high),
    )


def model_defaults(name: str) -> tuple[Any, ...]:
    """A model picked by the user brings its preset's sampler, steps, CFG and size."""
    try:
        return model_form_updates(name)[1:]
    except StudioError:  # a half-typed name or path: leave the form alone
        return tuple(gr.skip() for _ in range(6))


def aspect_size(ratio: str, model: str) -> tuple[Any, Any]:
    """Width and height for an aspect-ratio preset, keeping the model's default pixel count."""
    try:
        source = models.resolve_model(model)
        d = source.defaults
        width, height = size_for_aspect(ratio, d.width * d.height, *source.size_range)
    except StudioError as exc:
        raise _error(exc) from None
    return gr.update(value=width), gr.update(value=height)


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


def lora_tag(prompt: str, name: str | None, weight: float) -> str:
    """The prompt with `<lora:name:weight>` added (or that LoRA's weight changed), as A1111's
    extra-networks cards do."""
    if not name:
        raise gr.Error("Pick a LoRA first.", print_exception=False)
    tag = f"<lora:{name}:{weight:g}>"
    text = prompt or ""
    for match in loras.TAG.finditer(text):
        if match.group(1).strip() == name:
            return text[:match.start()] + tag + text[match.end():]
    return f"{text.rstrip()} {tag}".strip()
