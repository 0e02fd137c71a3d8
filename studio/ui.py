"""The Gradio page on top of the engine: layout and wiring. Nothing imports this module but app.py
and tests; what the events do lives in handlers.py.

Every user's state lives in their own events and gr.State values; the Studio shared here is a cache
of loaded models and a device lock, never a user's settings. The generation event is exposed as
`api_name="generate"`; its keyword parameters are those of `handlers.make_generate`'s function.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from . import handlers, loras, models, previews, prompts, samplers
from .hires import UPSCALERS
from .images import RESIZE_MODES
from .engine import Studio
from .errors import ModelLoadError, StudioError
from .hosting import on_gpu
from .outputs import OutputFolder
from .request import (BATCH_COUNT_RANGE, BATCH_RANGE, CFG_RANGE, CLIP_SKIP_RANGE, HIRES_SCALE_RANGE, INPAINT_AREAS,
                      INPAINT_MODES, MASK_BLUR_RANGE, MASKED_CONTENT, MAX_SEED, PADDING_RANGE, STEPS_RANGE)
from .sessions import SessionJobs
from .sizes import ASPECT_RATIOS
from .styles import style_names

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


def build_ui(studio: Studio, warmup: Warmup, queue_size: int = 16, preview_method: str = "auto",
             outputs: OutputFolder | None = None, models_dir: str | Path | None = None,
             allow_pickle: bool = False, gpu_duration_s: int = 120, loras_dir: str | Path | None = None
             ) -> gr.Blocks:
    """The page. Defaults come from the starting model's preset."""
    start = models.resolve_model(warmup.requested)
    d = start.defaults
    jobs = SessionJobs()  # running jobs by session: what Stop may cancel

    def choices() -> list[tuple[str, str]]:
        return handlers.model_choices(studio, models_dir, allow_pickle)

    with gr.Blocks(title="studio") as demo:
        gr.Markdown("# studio")
        notice = gr.Markdown(warmup.notice, elem_id="notice")
        with gr.Row():
            with gr.Column(scale=4):
                prompt = gr.Textbox(label="Prompt", lines=3, elem_id="prompt",
                                    placeholder="a lighthouse at dusk, (dramatic sky:1.2) — Ctrl+Enter generates")
                counter = gr.Markdown(handlers.token_counter(None), elem_id="token-count")
                negative_prompt = gr.Textbox("", label="Negative prompt", lines=2, elem_id="negative_prompt")
                with gr.Accordion("Parsed prompt", open=False):
                    parsed = gr.JSON(label="Fragments, weights, tokens per chunk, warnings", elem_id="parsed",
                                     height=180)
            with gr.Column(scale=1, min_width=160):
                run = gr.Button("Generate", variant="primary", elem_id="generate")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
        with gr.Row():
            with gr.Column():
                task = gr.Radio(list(handlers.TASKS), value="txt2img", visible=False, elem_id="task")
                with gr.Tabs(elem_id="tasks") as tabs:
                    with gr.Tab("Text to image", id="txt2img", elem_id="tab-txt2img") as tab_txt2img:
                        with gr.Accordion("Hires fix", open=False, elem_id="hires-panel"):
                            hires = gr.Checkbox(False, label="Hires fix: generate, upscale, repaint at the larger size",
                                                elem_id="hires")
                            with gr.Row():
                                hires_upscaler = gr.Dropdown(list(UPSCALERS), value="Latent", label="Upscaler")
                                hires_scale = gr.Slider(*HIRES_SCALE_RANGE, value=2.0, step=0.05, label="Upscale by")
                            with gr.Row():
                                hires_steps = gr.Slider(0, STEPS_RANGE[1], value=0, step=1, label="Hires steps",
                                                        info="0 = as many as the first pass")
                                hires_strength = gr.Slider(0, 1, value=0.7, step=0.01, label="Hires denoising strength")
                    with gr.Tab("Image to image", id="img2img", elem_id="tab-img2img") as tab_img2img:
                        init_image = gr.Image(type="pil", image_mode="RGB", label="Start from", height=320,
                                              sources=["upload", "clipboard"], elem_id="init-image")
                    with gr.Tab("Inpaint", id="inpaint", elem_id="tab-inpaint") as tab_inpaint:
                        inpaint = gr.ImageEditor(
                            type="pil", label="Load a picture, then paint over what to repaint", height=420,
                            sources=["upload", "clipboard"], transforms=[], layers=False, elem_id="inpaint-editor",
                            format="png",  # lossless: pixels outside the mask must stay the picture's own
                            brush=gr.Brush(colors=["#ffffff"], color_mode="fixed", default_size="auto"),
                        )
                        with gr.Row():
                            inpaint_mode = gr.Radio(list(INPAINT_MODES), value=INPAINT_MODES[0], label="Mask mode")
                            mask_blur = gr.Slider(*MASK_BLUR_RANGE, value=4, step=1, label="Mask blur")
                        with gr.Row():
                            masked_content = gr.Radio(list(MASKED_CONTENT), value="original", label="Masked content")
                            inpaint_area = gr.Radio(list(INPAINT_AREAS), value=INPAINT_AREAS[0], label="Inpaint area")
                            masked_padding = gr.Slider(*PADDING_RANGE, value=32, step=4,
                                                       label="Only masked padding, pixels")
                        with gr.Accordion("Upload a mask instead of painting", open=False):
                            mask = gr.Image(type="pil", image_mode="L", label="Mask (white = repaint)", height=200,
                                            sources=["upload", "clipboard"], elem_id="mask-upload")
                with gr.Row():
                    denoising_strength = gr.Slider(0, 1, value=0.75, step=0.01, label="Denoising strength",
                                                   info="image to image and inpaint: 0 keeps the picture, 1 ignores it",
                                                   elem_id="denoising-strength")
                    resize_mode = gr.Dropdown(list(RESIZE_MODES), value="Just resize", label="Resize mode")
                with gr.Row():
                    model = gr.Dropdown(choices(), value=warmup.model, label="Model", allow_custom_value=True,
                                        scale=5, elem_id="model",
                                        info="a preset, a checkpoint in the models folder, a hub id, a folder or a "
                                             ".safetensors file; ● = loaded")
                    refresh = gr.Button("↻", scale=0, min_width=40, elem_id="refresh-models")
                with gr.Row():
                    sampler = gr.Dropdown(samplers.sampler_names(), value=d.sampler, label="Sampler",
                                          allow_custom_value=True)
                    schedule = gr.Dropdown(samplers.schedule_names(), value=d.schedule, label="Schedule type",
                                           allow_custom_value=True)
                steps = gr.Slider(*STEPS_RANGE, value=d.steps, step=1, label="Steps")
                cfg_scale = gr.Slider(*CFG_RANGE, value=d.cfg_scale, step=0.5, label="CFG scale")
                low, high = start.size_range
                with gr.Row():
                    width = gr.Slider(low, high, value=d.width, step=8, label="Width")
                    height = gr.Slider(low, high, value=d.height, step=8, label="Height")
                with gr.Row():
                    aspect = gr.Dropdown(list(ASPECT_RATIOS), value=None, label="Aspect ratio", scale=3,
                                         info="keeps the model's pixel count", elem_id="aspect")
                    swap = gr.Button("⇅ Swap", scale=1, min_width=80, elem_id="swap-size")
                with gr.Row():
                    batch_count = gr.Slider(*BATCH_COUNT_RANGE, value=1, step=1, label="Batch count",
                                            info="batches one after another")
                    batch_size = gr.Slider(*BATCH_RANGE, value=1, step=1, label="Batch size",
                                           info="images per batch")
                with gr.Row():
                    seed = gr.Number(value=-1, precision=0, minimum=-1, maximum=MAX_SEED, label="Seed (-1 = random)",
                                     scale=4, elem_id="seed")
                    random_seed = gr.Button("🎲 Random", scale=0, min_width=90, elem_id="random-seed")
                    reuse_seed = gr.Button("♻ Reuse last", scale=0, min_width=110, elem_id="reuse-seed")
                with gr.Row():
                    prompt_syntax = gr.Radio(prompts.syntax_names(), value=prompts.A1111, label="Prompt syntax",
                                             info="A1111: (word:1.3) ((word)) [word] BREAK · compel: word++ (words)1.3 .blend()")
                    clip_skip = gr.Slider(*CLIP_SKIP_RANGE, value=1, step=1, label="Clip skip (SD 1.x)")
                preview = gr.Dropdown(list(previews.METHODS), value=preview_method, label="Live preview",
                                      info="auto: TAESD on a GPU, else latent2rgb")
                with gr.Row():
                    lora_name = gr.Dropdown(loras.available(loras_dir), value=None, label="LoRA", scale=3,
                                            allow_custom_value=True, elem_id="lora-name",
                                            info="from the loras folder; adds <lora:name:weight> to the prompt")
                    lora_weight = gr.Slider(-2, 2, value=1.0, step=0.05, label="Weight", scale=2)
                    add_lora = gr.Button("Add to prompt", scale=1, min_width=100, elem_id="add-lora")
                style_choice = gr.CheckboxGroup(style_names(), value=[], label="Styles",
                                                info="applied in order; the final prompt is shown in the infotext")
            with gr.Column():
                status = gr.Markdown("", label="status", elem_id="status")
                live = gr.Image(label="Live preview", format="jpeg", interactive=False, elem_id="preview", height=320,
                                buttons=[])
                gallery = gr.Gallery(label="Images", columns=2, height="auto", format="png", type="filepath", interactive=False,
                                     elem_id="gallery")
                infotext = gr.Textbox(label="Infotext", lines=3, interactive=False, elem_id="infotext")
                seed_used = gr.Number(label="Seed used", precision=0, interactive=False, elem_id="seed_used")
                with gr.Row():
                    to_img2img = gr.Button("→ Image to image", size="sm", elem_id="send-img2img")
                    to_inpaint = gr.Button("→ Inpaint", size="sm", elem_id="send-inpaint")
                picked = gr.State(None)  # the gallery image clicked last
        with gr.Accordion("History", open=False, elem_id="history"):
            history = gr.State([])  # this session's image paths, newest first
            history_gallery = gr.Gallery(label="This session's images, newest first", columns=6, height=300,
                                         interactive=False,
                                         type="filepath", elem_id="history-gallery")
            with gr.Row():
                history_text = gr.Textbox(label="Infotext", lines=3, interactive=False, elem_id="history-text",
                                          scale=4)
                restore = gr.Button("Restore these settings", elem_id="restore", scale=1)
            history_pick = gr.State(None)
        with gr.Accordion("PNG Info", open=False, elem_id="png-info"):
            with gr.Row():
                png_file = gr.File(label="Drop a PNG", file_types=["image"], type="binary", elem_id="png-file")
                with gr.Column():
                    png_text = gr.Textbox(label="Parameters", lines=6, interactive=False, elem_id="png-text")
                    png_fields = gr.JSON(label="Settings found", elem_id="png-fields", height=200)
                    send = gr.Button("Send to the form", elem_id="send-to-form")

        # -- generation ----------------------------------------------------------------------
        inputs = [prompt, negative_prompt, model, sampler, schedule, steps, cfg_scale, seed, width, height, batch_size,
                  prompt_syntax, clip_skip, preview, style_choice, batch_count, task, init_image, inpaint, mask,
                  denoising_strength, resize_mode, mask_blur, inpaint_mode, masked_content, inpaint_area,
                  masked_padding, hires, hires_scale, hires_upscaler, hires_steps, hires_strength, history]
        event = gr.on(
            triggers=[run.click, prompt.submit],
            fn=on_gpu(handlers.make_generate(studio, outputs or OutputFolder(None), jobs), gpu_duration_s),
            inputs=inputs,
            outputs=[gallery, infotext, seed_used, status, live, history],
            api_name="generate",
            show_progress_on=[gallery],  # queue position and progress there; no overlay on the live preview
            concurrency_id=GPU_SLOT,
            concurrency_limit=1,
        )
        # Stop cancels this session's own jobs (and the event's stream); it never waits for the GPU slot.
        stop.click(handlers.make_stop(jobs), outputs=status, cancels=[event], api_name="stop",
                   concurrency_limit=None, show_progress="hidden")
        event.then(handlers.history_view, inputs=history, outputs=history_gallery, api_name=False,
                   show_progress="hidden")
        event.then(lambda: gr.update(choices=choices()), outputs=model, api_name=False, show_progress="hidden")

        # -- prompt: parsed view and token counter --------------------------------------------------
        gr.on(
            triggers=[prompt.change, prompt_syntax.change, model.change],
            fn=handlers.make_parse_prompt(studio),
            inputs=[prompt, prompt_syntax, model],
            outputs=parsed,
            api_name="parse_prompt",
            show_progress="hidden",
            trigger_mode="always_last",
        )
        parsed.change(handlers.token_counter, inputs=parsed, outputs=counter, api_name=False, show_progress="hidden")

        # -- form helpers ---------------------------------------------------------------------------
        for tab, name in ((tab_txt2img, "txt2img"), (tab_img2img, "img2img"), (tab_inpaint, "inpaint")):
            tab.select(lambda name=name: name, outputs=task, api_name=False, show_progress="hidden")
        add_lora.click(handlers.lora_tag, inputs=[prompt, lora_name, lora_weight], outputs=prompt, api_name=False,
                       show_progress="hidden")
        model.input(handlers.model_defaults, inputs=model,
                    outputs=[sampler, schedule, steps, cfg_scale, width, height], api_name=False,
                    show_progress="hidden")
        refresh.click(lambda: (gr.update(choices=choices()), gr.update(choices=loras.available(loras_dir))),
                      outputs=[model, lora_name], api_name=False, show_progress="hidden")
        aspect.input(handlers.aspect_size, inputs=[aspect, model], outputs=[width, height], api_name=False,
                     show_progress="hidden")
        swap.click(lambda w, h: (h, w), inputs=[width, height], outputs=[width, height], api_name=False,
                   show_progress="hidden")
        random_seed.click(lambda: -1, outputs=seed, api_name=False, show_progress="hidden")
        reuse_seed.click(lambda used, current: current if used is None else used, inputs=[seed_used, seed],
                         outputs=seed, api_name=False, show_progress="hidden")
        gallery.select(handlers.selected_infotext, inputs=gallery, outputs=[infotext, picked], api_name=False,
                       show_progress="hidden")
        to_img2img.click(handlers.send_to_img2img, inputs=[gallery, picked], outputs=[init_image, tabs, task],
                         api_name=False, show_progress="hidden")
        to_inpaint.click(handlers.send_to_inpaint, inputs=[gallery, picked], outputs=[inpaint, tabs, task],
                         api_name=False, show_progress="hidden")

        # -- history and PNG Info send settings back to the form --------------------------------------
        form_fields = [prompt, negative_prompt, model, sampler, schedule, steps, cfg_scale, seed, width, height,
                       prompt_syntax, clip_skip]
        history_gallery.select(handlers.selected_infotext, inputs=history_gallery,
                               outputs=[history_text, history_pick], api_name=False, show_progress="hidden")
        restore.click(handlers.restore_from, inputs=history_pick, outputs=form_fields, api_name=False)
        png_file.change(handlers.png_info, inputs=png_file, outputs=[png_text, png_fields], api_name="png_info")
        send.click(handlers.form_updates, inputs=png_fields, outputs=form_fields, api_name=False)

        # -- start-up: loaded markers, and the warm-up's fallback notice ------------------------------
        demo.load(lambda: gr.update(choices=choices()), outputs=model, api_name=False, show_progress="hidden")
        timer = gr.Timer(1.0)
        preset_fields = [model, sampler, schedule, steps, cfg_scale, width, height]

        def poll() -> tuple[Any, ...]:
            done = gr.Timer(active=not warmup.done.is_set())
            if warmup.model == warmup.requested:
                return (warmup.notice, *[gr.skip()] * len(preset_fields), done)
            # Fell back: switch the form to the fallback model and its own defaults and sizes.
            return (warmup.notice, *handlers.model_form_updates(warmup.model), done)

        timer.tick(poll, outputs=[notice, *preset_fields, timer], api_name=False, show_progress="hidden")
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    return demo


# Ctrl+Enter (Cmd+Enter on a Mac) generates from anywhere in the page, as in A1111.
PAGE_HEAD = """<script>
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    const button = document.querySelector("#generate");
    if (button) { e.preventDefault(); button.click(); }
  }
});
</script>"""
