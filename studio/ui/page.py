"""The Gradio page on top of the engine: layout and wiring. Nothing imports this module but app.py
and tests; what the events do lives in handlers.py, restore.py and api.py.

Every generation setting's widget comes from the field table (`Form`), placed here by name; a
setting the layout does not place shows up under "More settings". Every user's state lives in
their own events and gr.State values; the Studio shared here is a cache of loaded models and a
device lock, never a user's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from .. import models
from ..engine import Studio
from ..errors import StudioError
from ..fields import TABLE, FieldTable
from ..outputs import OutputFolder
from ..sizes import ASPECT_RATIOS
from . import handlers, restore
from .api import make_generate_api
from .bounded import BoundedImageEditor
from .hosting import on_gpu
from .queue_guard import DEFAULT_MAX_WAITING, CancelGuard, QueueGuard
from .runs import reported
from .sessions import SessionJobs
from .warmup import Warmup
from .widgets import Form

GPU_SLOT = "gpu"  # every event that runs on the device shares this concurrency slot
PRIVATE = {"api_visibility": "private", "show_progress": "hidden"}  # page-only helpers


@dataclass(frozen=True)
class PageOptions:
    """How the page serves (the engine's own settings live in the Studio's StudioConfig)."""

    queue_size: int = 16
    max_queued: int = DEFAULT_MAX_WAITING  # requests one visitor may have waiting behind the running one
    preview_method: str = "auto"  # the Live preview control's starting value
    gpu_duration_s: int = 120  # ZeroGPU: most GPU seconds one Generate may hold
    # Gradio's cache (uploads, result copies): every hour, files older than a day are deleted.
    delete_cache: tuple[int, int] | None = (3600, 24 * 3600)


def build_ui(studio: Studio, warmup: Warmup, outputs: OutputFolder | None = None,
             options: PageOptions = PageOptions(), table: FieldTable = TABLE) -> gr.Blocks:
    """The page. The form starts with the starting model's defaults and size range."""
    config = studio.config
    outputs = outputs or OutputFolder(None)
    jobs = SessionJobs()  # running jobs by session: what Stop may cancel
    form = Form(table, models.resolve_model(warmup.requested),
                {"model": warmup.model, "preview": options.preview_method})
    w = form.widget

    def row(*names: str) -> None:
        """Fields side by side."""
        with gr.Row():
            for name in names:
                w(name)

    def choices() -> list[tuple[str, str]]:
        return handlers.model_choices(studio, config.models_dir, config.allow_pickle)

    with gr.Blocks(title="studio", delete_cache=options.delete_cache) as demo:
        gr.Markdown("# studio")
        # The tab's key: made in the browser when the page opens, sent only in request bodies. Stop
        # and History need it besides Gradio's session id (which travels in URLs).
        tab_key = gr.Textbox("", visible=False, elem_id="tab-key")
        notice = gr.Markdown(warmup.notice, elem_id="notice")
        with gr.Row():
            with gr.Column(scale=4):
                prompt = w("prompt")
                counter = gr.Markdown(handlers.token_counter(None), elem_id="token-count")
                w("negative_prompt")
                with gr.Accordion("Parsed prompt", open=False):
                    parsed = gr.JSON(label="Fragments, weights, tokens per chunk, warnings", elem_id="parsed",
                                     height=180)
            with gr.Column(scale=1, min_width=160):
                run = gr.Button("Generate", variant="primary", elem_id="generate")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
        with gr.Row():
            with gr.Column():
                task = w("task")
                with gr.Tabs(elem_id="tasks") as tabs:
                    with gr.Tab("Text to image", id="txt2img", elem_id="tab-txt2img") as tab_txt2img:
                        with gr.Accordion("Hires fix", open=False, elem_id="hires-panel"):
                            w("hires")
                            row("hires_upscaler", "hires_scale")
                            row("hires_steps", "hires_strength")
                    with gr.Tab("Image to image", id="img2img", elem_id="tab-img2img") as tab_img2img:
                        init_image = w("init_image")
                    with gr.Tab("Inpaint", id="inpaint", elem_id="tab-inpaint") as tab_inpaint:
                        editor = BoundedImageEditor(
                            type="pil", label="Load a picture, then paint over what to repaint", height=420,
                            sources=["upload", "clipboard"], transforms=[], layers=False, elem_id="inpaint-editor",
                            format="png",  # lossless: pixels outside the mask must stay the picture's own
                            brush=gr.Brush(colors=["#ffffff"], color_mode="fixed", default_size="auto"),
                        )
                        row("inpaint_mode", "mask_blur")
                        row("masked_content", "inpaint_area", "masked_padding")
                        with gr.Accordion("Upload a mask instead of painting", open=False):
                            w("mask")
                row("denoising_strength", "resize_mode")
                with gr.Row():
                    model = w("model", scale=5)
                    refresh = gr.Button("↻", scale=0, min_width=40, elem_id="refresh-models")
                row("sampler", "schedule")
                w("steps")
                w("cfg_scale")
                with gr.Row():
                    width = w("width")
                    height = w("height")
                with gr.Row():
                    aspect = gr.Dropdown(list(ASPECT_RATIOS), value=None, label="Aspect ratio", scale=3,
                                         info="keeps the model's pixel count", elem_id="aspect")
                    swap = gr.Button("⇅ Swap", scale=1, min_width=80, elem_id="swap-size")
                row("batch_count", "batch_size")
                with gr.Row():
                    seed = w("seed", scale=4)
                    random_seed = gr.Button("🎲 Random", scale=0, min_width=90, elem_id="random-seed")
                    reuse_seed = gr.Button("♻ Reuse last", scale=0, min_width=110, elem_id="reuse-seed")
                row("prompt_syntax", "clip_skip")
                w("preview")
                with gr.Row():
                    lora_name = gr.Dropdown(handlers.lora_names(config.loras_dir), value=None, label="LoRA", scale=3,
                                            allow_custom_value=True, elem_id="lora-name",
                                            info="from the loras folder; adds <lora:name:weight> to the prompt")
                    lora_weight = gr.Slider(-4, 4, value=1.0, step=0.05, label="Weight", scale=2)
                    add_lora = gr.Button("Add to prompt", scale=1, min_width=100, elem_id="add-lora")
                w("styles")
                with gr.Accordion("More settings", open=False, elem_id="more-settings"):
                    for name in form.remaining():
                        w(name)
            with gr.Column():
                status = gr.Markdown("", label="status", elem_id="status")
                live = gr.Image(label="Live preview", format="jpeg", interactive=False, elem_id="preview", height=320,
                                buttons=[])
                gallery = gr.Gallery(label="Images", columns=2, height="auto", format="png", type="filepath",
                                     interactive=False, elem_id="gallery")
                infotext = gr.Textbox(label="Infotext", lines=3, interactive=False, elem_id="infotext")
                seed_used = gr.Number(label="Seed used", precision=0, interactive=False, elem_id="seed_used")
                with gr.Row():
                    to_img2img = gr.Button("→ Image to image", size="sm", elem_id="send-img2img")
                    to_inpaint = gr.Button("→ Inpaint", size="sm", elem_id="send-inpaint")
                picked = gr.State(None)  # the gallery image clicked last
        with gr.Accordion("History", open=False, elem_id="history"):
            history = gr.State(handlers.History())  # this tab's image paths, newest first, under its key
            history_gallery = gr.Gallery(label="This tab's images, newest first", columns=6, height=300,
                                         interactive=False, type="filepath", elem_id="history-gallery")
            with gr.Row():
                history_text = gr.Textbox(label="Infotext", lines=3, interactive=False, elem_id="history-text",
                                          scale=4)
                with gr.Column(scale=1):
                    restore_button = gr.Button("Restore these settings", elem_id="restore")
                    history_note = gr.Markdown("", elem_id="history-note")
            history_pick = gr.State(None)
        with gr.Accordion("PNG Info", open=False, elem_id="png-info"):
            with gr.Row():
                png_file = gr.File(label="Drop a PNG", file_types=["image"], type="binary", elem_id="png-file")
                with gr.Column():
                    png_text = gr.Textbox(label="Parameters", lines=6, interactive=False, elem_id="png-text")
                    png_fields = gr.JSON(label="Settings found", elem_id="png-fields", height=200)
                    send = gr.Button("Send to the form", elem_id="send-to-form")
                    png_note = gr.Markdown("", elem_id="png-note")

        # -- generation: the page's event (every form component by name) and the typed API ---------
        shown = {"gallery": gallery, "infotext": infotext, "seed": seed_used, "status": status, "preview": live,
                 "history": history}
        event = gr.on(
            triggers=[run.click, prompt.submit],
            fn=on_gpu(reported(handlers.make_generate(studio, outputs, jobs, form, editor, tab_key, shown)),
                      options.gpu_duration_s),
            inputs={*form.components.values(), editor, history, tab_key},
            outputs=list(shown.values()),
            api_name="page_generate",
            api_visibility="private",  # API clients use /generate below, typed from the field table
            show_progress_on=[gallery],  # queue position and progress there; no overlay on the live preview
            concurrency_id=GPU_SLOT,
            concurrency_limit=1,
        )
        gr.api(on_gpu(reported(make_generate_api(studio, outputs, jobs, table, lambda: warmup.model)), options.gpu_duration_s),
                           api_name="generate", concurrency_id=GPU_SLOT, concurrency_limit=1)
        # Stop removes the visitor's waiting requests and ends their running one; it never waits for the
        # GPU slot. Not Gradio's `cancels=`: that cancels by session id alone, which travels in URLs.
        guard = QueueGuard(GPU_SLOT, tab_key, options.max_queued, page_fns=["page_generate"])
        stop.click(reported(handlers.make_stop(jobs, guard)), inputs=tab_key, outputs=status, api_name="stop",
                   concurrency_limit=None, show_progress="hidden")
        event.then(reported(handlers.history_view), inputs=[history, tab_key], outputs=history_gallery, **PRIVATE)
        event.then(lambda: gr.update(choices=choices()), outputs=model, **PRIVATE)

        # -- prompt: parsed view and token counter --------------------------------------------------
        parse_prompt = reported(handlers.make_parse_prompt(studio))
        gr.on(
            triggers=[prompt.change, form.components["prompt_syntax"].change, model.change],
            fn=parse_prompt,
            inputs=[prompt, form.components["prompt_syntax"], model],
            outputs=parsed,
            api_name="page_parse_prompt",
            trigger_mode="always_last",
            **PRIVATE,
        )
        gr.api(parse_prompt, api_name="parse_prompt", concurrency_limit=None)  # typed: model is free text
        parsed.change(reported(handlers.token_counter), inputs=parsed, outputs=counter, **PRIVATE)

        # -- form helpers ---------------------------------------------------------------------------
        for tab, name in ((tab_txt2img, "txt2img"), (tab_img2img, "img2img"), (tab_inpaint, "inpaint")):
            tab.select(lambda name=name: name, outputs=task, **PRIVATE)
        add_lora.click(reported(restore.lora_tag), inputs=[prompt, lora_name, lora_weight], outputs=prompt, **PRIVATE)
        defaults = [form.components[name] for name in handlers.MODEL_DEFAULTS]

        def model_defaults(name: str) -> dict:
            """A model picked by the user brings its preset's sampler, steps, CFG and size."""
            try:
                updates = handlers.model_form_updates(name)
            except StudioError:  # a half-typed name or path: leave the form alone
                return {}
            return {form.components[n]: updates[n] for n in handlers.MODEL_DEFAULTS}

        model.input(reported(model_defaults), inputs=model, outputs=defaults, **PRIVATE)
        refresh.click(lambda: (gr.update(choices=choices()), gr.update(choices=handlers.lora_names(config.loras_dir))),
                      outputs=[model, lora_name], **PRIVATE)
        aspect.input(reported(handlers.aspect_size), inputs=[aspect, model], outputs=[width, height], **PRIVATE)
        swap.click(lambda w_, h_: (h_, w_), inputs=[width, height], outputs=[width, height], **PRIVATE)
        random_seed.click(lambda: -1, outputs=seed, **PRIVATE)
        reuse_seed.click(lambda used, current: current if used is None else used, inputs=[seed_used, seed],
                         outputs=seed, **PRIVATE)
        gallery.select(reported(handlers.selected_infotext), inputs=gallery, outputs=[infotext, picked], **PRIVATE)
        to_img2img.click(reported(lambda g, p: (handlers.picked_image(g, p), gr.Tabs(selected="img2img"), "img2img")),
                         inputs=[gallery, picked], outputs=[init_image, tabs, task], **PRIVATE)
        to_inpaint.click(reported(lambda g, p: (handlers.picked_image(g, p), gr.Tabs(selected="inpaint"), "inpaint")),
                         inputs=[gallery, picked], outputs=[editor, tabs, task], **PRIVATE)

        # -- history and PNG Info send every setting back to the form ---------------------------------
        png_info = restore.make_png_info(config.models_dir, config.allow_pickle, table)
        restore_history = restore.make_restore(form, tabs, history_note, png_info)
        send_to_form = restore.make_send(form, tabs, png_note)
        history_gallery.select(reported(handlers.selected_infotext), inputs=history_gallery,
                               outputs=[history_text, history_pick], **PRIVATE)
        restore_button.click(reported(restore_history), inputs=history_pick,
                             outputs=restore.restorable_outputs(form, tabs, history_note), **PRIVATE)
        png_file.change(reported(png_info), inputs=png_file, outputs=[png_text, png_fields], api_name="png_info")
        send.click(reported(send_to_form), inputs=png_fields, outputs=restore.restorable_outputs(form, tabs, png_note),
                   **PRIVATE)

        # -- start-up: loaded markers, and the warm-up's fallback notice ------------------------------
        demo.load(lambda: gr.update(choices=choices()), outputs=model, **PRIVATE)
        demo.load(None, js=NEW_TAB_KEY, outputs=tab_key, **PRIVATE)
        timer = gr.Timer(1.0)
        preset_fields = ["model", *handlers.MODEL_DEFAULTS]

        def poll() -> dict[Any, Any]:
            done = gr.Timer(active=not warmup.done.is_set())
            if warmup.model == warmup.requested:
                return {notice: warmup.notice, timer: done}
            # Fell back: switch the form to the fallback model and its own defaults and sizes.
            updates = handlers.model_form_updates(warmup.model)
            return {notice: warmup.notice, timer: done, **{form.components[n]: updates[n] for n in preset_fields}}

        timer.tick(reported(poll), outputs=[notice, timer, *(form.components[n] for n in preset_fields)], **PRIVATE)
    demo.queue(max_size=options.queue_size, default_concurrency_limit=1)
    guard.install(demo)
    # The parts tests and tools reach for: the widgets by field name, and the restore handlers.
    # app_kwargs: what launch() needs besides the page (the guard in front of Gradio's /cancel).
    demo.studio_parts = SimpleNamespace(app_kwargs={"middleware": [Middleware(CancelGuard, guard=guard)]},
                                        form=form, tabs=tabs, png_info=png_info, restore_history=restore_history,
                                        send_to_form=send_to_form, history_note=history_note, png_note=png_note)
    return demo


# 128 random bits from the browser's CSPRNG (crypto.getRandomValues works on plain http too).
NEW_TAB_KEY = """() => Array.from(crypto.getRandomValues(new Uint8Array(16)),
                                  (b) => b.toString(16).padStart(2, "0")).join("")"""

# Ctrl+Enter (Cmd+Enter on a Mac) generates from anywhere in the page, as in A1111.
PAGE_HEAD = """<script>
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    const button = document.querySelector("#generate");
    if (button) { e.preventDefault(); button.click(); }
  }
});
</script>"""
