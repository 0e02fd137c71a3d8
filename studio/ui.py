"""The Gradio page on top of the engine. Nothing imports this module but app.py and tests.

Every user's state lives in their own event (and later gr.State); the Studio shared here is a cache
of loaded models and a device lock, never a user's settings. The generation event is exposed as
`api_name="generate"`; its keyword parameters are the function parameters of `generate` below.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import gradio as gr

from . import models, previews, prompts, samplers
from .engine import Studio
from .metadata import MetadataError, parse_infotext, read_png, request_fields
from .styles import apply_styles, style_names
from .outputs import OutputFolder
from .errors import ModelLoadError, StudioError
from .events import Cancelled, Preview, Progress, Result, Status
from .request import BATCH_RANGE, CFG_RANGE, CLIP_SKIP_RANGE, DEFAULT_MODEL, MAX_SEED, STEPS_RANGE, GenerationRequest

log = logging.getLogger("studio")
FALLBACK_MODEL = "tiny"
GPU_SLOT = "gpu"  # every event that runs on the device shares this concurrency slot


@dataclass
class Warmup:
    """Loads the starting model in the background so the page is up at once.

    When the model cannot be loaded (no network and not cached, say), the studio starts on the
    offline `tiny` model instead and `notice` says why and how to get real weights.
    """

    studio: Studio
    requested: str
    model: str = ""
    notice: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "Warmup":
        self.model = self.requested
        threading.Thread(target=self._run, name="studio-warmup", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            self.studio.load(self.requested)
            source = models.resolve_model(self.requested)
            if source.is_noise:
                self.notice = f"Running the offline **{source.name}** model: random weights, its images are noise."
        except (ModelLoadError, StudioError) as exc:
            self.model = FALLBACK_MODEL
            self.notice = (
                f"**{self.requested} could not be loaded**, so the studio started on the offline "
                f"`{FALLBACK_MODEL}` model (random weights: images are noise). Reason: {exc}"
            )
            log.warning("%s could not be loaded (%s); starting on %s", self.requested, exc, FALLBACK_MODEL)
            try:
                self.studio.load(FALLBACK_MODEL)
            except StudioError as tiny_exc:  # pragma: no cover - tiny needs no network or files
                log.error("The fallback model failed too: %s", tiny_exc)
        finally:
            self.done.set()


def _status_line(event: Progress) -> str:
    return (f"Step {event.step}/{event.total} · {event.it_per_s:.2f} it/s · "
            f"ETA {event.eta_s:.1f}s · {event.elapsed_s:.1f}s elapsed")


def make_generate(studio: Studio, outputs: OutputFolder):
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
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple[Any, str, int, str, Any]]:
        """Generate images; streams status while running, ends with images, infotext and seed."""
        try:
            # Styles first: the final prompt is what is encoded, shown in the infotext and saved.
            prompt, negative_prompt = apply_styles(prompt or "", negative_prompt or "", styles or [])
            request = GenerationRequest(
                prompt=prompt, negative_prompt=negative_prompt, model=model, sampler=sampler,
                schedule=schedule, steps=steps, cfg_scale=cfg_scale, seed=seed,
                width=width, height=height, batch_size=batch_size,
                prompt_syntax=prompt_syntax, clip_skip=clip_skip, preview=preview,
            )
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        job = studio.generate(request)
        events = iter(job)
        try:
            skip = gr.skip()
            for event in events:
                if isinstance(event, Status):
                    progress(0, desc=event.message)
                    yield skip, skip, skip, event.message, skip
                elif isinstance(event, Progress):
                    progress((event.step, event.total), desc="Denoising", unit="steps")
                    yield skip, skip, skip, _status_line(event), skip
                elif isinstance(event, Preview):
                    yield skip, skip, skip, skip, event.image  # JPEG-encoded by the component
                elif isinstance(event, Cancelled):
                    yield skip, skip, skip, f"Stopped at step {event.step}/{event.total}.", skip
                elif isinstance(event, Result):
                    notes = " ".join(event.notices)
                    done = (f"Done in {event.timings.total_s:.1f}s (seed {event.seed}). {notes}").strip()
                    paths = outputs.save(event)  # PNGs with metadata: what the page and the API serve
                    yield [str(p) for p in paths], event.infotexts[0], event.seed, done, skip
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # keep serving; the message names what failed
            log.exception("generation failed")
            raise gr.Error(f"Generation failed: {type(exc).__name__}: {exc}") from None
        finally:
            job.cancel()  # a Stop press or a closed connection ends the job, not just the stream
            events.close()

    return generate


def make_parse_prompt(studio: Studio):
    """The handler behind `/parse_prompt`: the parsed view of a prompt, as JSON."""

    def parse_prompt(prompt: str, prompt_syntax: str = prompts.A1111, model: str = DEFAULT_MODEL) -> dict:
        """Fragments with their final weights, tokens in each 75-token chunk, and warnings."""
        try:
            view = studio.describe_prompt(prompt or "", model, prompt_syntax)
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return {
            "fragments": [{"text": text, "weight": round(weight, 4)} for text, weight in view.fragments],
            "chunk_tokens": list(view.chunk_tokens) if view.chunk_tokens is not None else None,
            "warnings": list(view.warnings),
        }

    return parse_prompt


FORM_ORDER = ("prompt", "negative_prompt", "model", "sampler", "schedule", "steps", "cfg_scale", "seed",
              "width", "height", "prompt_syntax", "clip_skip")


def png_info(image: bytes | None) -> tuple[str, dict]:
    """The handler behind `/png_info`: a PNG's parameters as text, and the settings they hold."""
    if not image:
        return "", {}
    try:
        meta = read_png(image)
    except MetadataError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    notes: list[str] = []
    if meta.request is not None:  # ours: the exact request
        fields = {k: v for k, v in meta.request.items() if k in FORM_ORDER}
    elif meta.infotext is not None:
        fields, notes = request_fields(parse_infotext(meta.infotext))
    else:
        fields = {}
    return meta.infotext or meta.message, {"message": meta.message, "fields": fields, "notes": notes}


def form_updates(found: dict | None, count: int) -> tuple[Any, ...]:
    """Form updates from PNG Info's settings, in FORM_ORDER; fields a PNG lacks stay as they are."""
    fields = (found or {}).get("fields", {})
    return tuple(gr.update(value=fields[name]) if name in fields else gr.skip() for name in FORM_ORDER[:count])


def model_form_updates(model: str) -> tuple[Any, ...]:
    """Updates for (model, sampler, schedule, steps, cfg_scale, width, height) from a preset."""
    source = models.resolve_model(model)
    d = source.defaults
    low, high = source.size_range
    return (
        gr.update(value=source.name), gr.update(value=d.sampler), gr.update(value=d.schedule),
        gr.update(value=d.steps), gr.update(value=d.cfg_scale),
        gr.update(value=d.width, minimum=low, maximum=high), gr.update(value=d.height, minimum=low, maximum=high),
    )


def build_ui(studio: Studio, warmup: Warmup, queue_size: int = 16, preview_method: str = "auto",
             outputs: OutputFolder | None = None) -> gr.Blocks:
    """The page. Defaults come from the starting model's preset."""
    start = models.resolve_model(warmup.requested)
    d = start.defaults
    sampler_names = samplers.sampler_names()
    with gr.Blocks(title="studio") as demo:
        gr.Markdown("# studio")
        notice = gr.Markdown(warmup.notice, elem_id="notice")
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=3, elem_id="prompt")
                parsed = gr.JSON(label="Parsed prompt", elem_id="parsed", open=False, height=180)
                negative_prompt = gr.Textbox("", label="Negative prompt", lines=2, elem_id="negative_prompt")
            with gr.Column(scale=1, min_width=160):
                run = gr.Button("Generate", variant="primary", elem_id="generate")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
        with gr.Row():
            with gr.Column():
                model = gr.Dropdown(models.preset_names(), value=warmup.model, label="Model",
                                    allow_custom_value=True, info="a preset, a hub id, a folder or a .safetensors file")
                with gr.Row():
                    sampler = gr.Dropdown(sampler_names, value=d.sampler, label="Sampler", allow_custom_value=True)
                    schedule = gr.Dropdown(samplers.schedule_names(), value=d.schedule, label="Schedule type",
                                           allow_custom_value=True)
                steps = gr.Slider(*STEPS_RANGE, value=d.steps, step=1, label="Steps")
                cfg_scale = gr.Slider(*CFG_RANGE, value=d.cfg_scale, step=0.5, label="CFG scale")
                low, high = start.size_range
                with gr.Row():
                    width = gr.Slider(low, high, value=d.width, step=8, label="Width")
                    height = gr.Slider(low, high, value=d.height, step=8, label="Height")
                with gr.Row():
                    seed = gr.Number(value=-1, precision=0, minimum=-1, maximum=MAX_SEED, label="Seed (-1 = random)")
                    batch_size = gr.Slider(*BATCH_RANGE, value=1, step=1, label="Batch size")
                with gr.Row():
                    prompt_syntax = gr.Radio(prompts.syntax_names(), value=prompts.A1111, label="Prompt syntax",
                                             info="A1111: (word:1.3) ((word)) [word] BREAK · compel: word++ (words)1.3 .blend()")
                    clip_skip = gr.Slider(*CLIP_SKIP_RANGE, value=1, step=1, label="Clip skip (SD 1.x)")
                preview = gr.Dropdown(list(previews.METHODS), value=preview_method, label="Live preview",
                                      info="auto: TAESD on a GPU, else latent2rgb")
                style_choice = gr.CheckboxGroup(style_names(), value=[], label="Styles",
                                                info="applied in order; the final prompt is shown in the infotext")
            with gr.Column():
                status = gr.Markdown("", label="status", elem_id="status")
                live = gr.Image(label="Live preview", format="jpeg", interactive=False, elem_id="preview", height=320,
                                buttons=[])
                gallery = gr.Gallery(label="Images", columns=2, height="auto", format="png", elem_id="gallery")
                infotext = gr.Textbox(label="Infotext", lines=3, interactive=False, elem_id="infotext")
                seed_used = gr.Number(label="Seed used", precision=0, interactive=False, elem_id="seed_used")
        inputs = [prompt, negative_prompt, model, sampler, schedule, steps, cfg_scale, seed, width, height, batch_size,
                  prompt_syntax, clip_skip, preview, style_choice]
        event = gr.on(
            triggers=[run.click, prompt.submit],
            fn=make_generate(studio, outputs or OutputFolder(None)),
            inputs=inputs,
            outputs=[gallery, infotext, seed_used, status, live],
            api_name="generate",
            show_progress_on=[gallery],  # no overlay on the live preview: it would flicker
            concurrency_id=GPU_SLOT,
            concurrency_limit=1,
        )
        stop.click(None, cancels=[event], api_name=False)
        gr.on(
            triggers=[prompt.change, prompt_syntax.change, model.change],
            fn=make_parse_prompt(studio),
            inputs=[prompt, prompt_syntax, model],
            outputs=parsed,
            api_name="parse_prompt",
            show_progress="hidden",
            trigger_mode="always_last",
        )

        with gr.Accordion("PNG Info", open=False, elem_id="png-info"):
            with gr.Row():
                png_file = gr.File(label="Drop a PNG", file_types=["image"], type="binary", elem_id="png-file")
                with gr.Column():
                    png_text = gr.Textbox(label="Parameters", lines=6, interactive=False, elem_id="png-text")
                    png_fields = gr.JSON(label="Settings found", elem_id="png-fields", height=200)
                    send = gr.Button("Send to the form", elem_id="send-to-form")
        png_file.change(png_info, inputs=png_file, outputs=[png_text, png_fields], api_name="png_info")
        form_fields = [prompt, negative_prompt, model, sampler, schedule, steps, cfg_scale, seed, width, height,
                       prompt_syntax, clip_skip]
        send.click(lambda found: form_updates(found, len(form_fields)), inputs=png_fields, outputs=form_fields,
                   api_name=False)

        def model_defaults(name: str) -> tuple[Any, ...]:
            """A model picked by the user brings its preset's sampler, steps, CFG and size."""
            try:
                return model_form_updates(name)[1:]
            except StudioError:  # a half-typed name or path: leave the form alone
                return tuple(gr.skip() for _ in range(6))

        model.input(model_defaults, inputs=model, outputs=[sampler, schedule, steps, cfg_scale, width, height],
                    api_name=False, show_progress="hidden")

        # Until the warm-up has finished, poll it so a fallback notice and model show up.
        timer = gr.Timer(1.0)

        preset_fields = [model, sampler, schedule, steps, cfg_scale, width, height]

        def poll() -> tuple[Any, ...]:
            done = gr.Timer(active=not warmup.done.is_set())
            if warmup.model == warmup.requested:
                return (warmup.notice, *[gr.skip()] * len(preset_fields), done)
            # Fell back: switch the form to the fallback model and its own defaults and sizes.
            return (warmup.notice, *model_form_updates(warmup.model), done)

        timer.tick(poll, outputs=[notice, *preset_fields, timer], api_name=False, show_progress="hidden")
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    return demo
