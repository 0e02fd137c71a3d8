"""The Gradio page on top of the engine: layout and wiring. Nothing imports this module but app.py
and tests; what the events do lives in handlers.py, restore.py and api.py.

Every generation setting's widget comes from the field table (`Form`), placed here by name; a
setting the layout does not place shows up under "More settings". Every user's state lives in
their own events and gr.State values; the Studio shared here is a cache of loaded models and a
device lock, never a user's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Mapping

import gradio as gr
from starlette.middleware import Middleware

from .. import models
from ..engine.interface import Engine
from ..errors import StudioError
from ..fields import IMAGE_TASKS, STRENGTH_TASKS, TABLE, FieldTable
from ..options import default
from ..outputs import OutputFolder
from ..sizes import ASPECT_RATIOS
from . import (control_view, detail_view, edit_view, handlers, networks_view, outpaint_view, restore, upscale_view,
               xyz_view)
from .generate_api import documented_api, make_generate_api
from .bounded import BoundedImageEditor
from .queue_guard import CancelGuard, QueueGuard, StreamGuard
from .connections import QUEUE_JS, QUICK, SOCKET_HEAD, STOP_JS, queue_route, session_id, stop_route, without_heartbeat
from .assets import (GENERATE_ENDS, GENERATE_STARTS, LOAD_HISTORY, LOAD_HISTORY_OWNER, NEW_TAB_KEY, PAGE_CSS,
                     PAGE_HEAD, SAVE_HISTORY, sent)
from .prompt_view import make_parse_prompt, make_prompt_preview, token_counter
from ..service import HISTORY_LIMIT, Service, SessionJobs
from .calls import reported
from .sessions import HistorySigner
from .warmup import Warmup
from .sdapi.routes import build_router
from .sdapi.calls import SdApi
from .widgets import Form

GPU_SLOT = "gpu"  # every event that runs on the device shares this concurrency slot
PRIVATE = {"api_visibility": "private", "show_progress": "hidden"}  # page-only helpers
# On load: the tab's new key, the history this tab kept (signed paths; see HistorySigner) and its owner.
OPEN_TAB = f"() => [({NEW_TAB_KEY})(), ({LOAD_HISTORY})(), ({LOAD_HISTORY_OWNER})()]"


@dataclass(frozen=True)
class PageOptions:
    """How the page serves (the engine's own settings live in the Studio's StudioConfig)."""

    queue_size: int = default("queue_size")
    max_queued: int = default("max_queued")  # requests one visitor may have waiting behind the running one
    preview_method: str = default("preview")  # the Live preview control's starting value
    fast_decode: bool = False  # the Fast decode box's starting value (app.py: ticked on a CPU)
    gpu_duration_s: int = default("gpu_duration")  # ZeroGPU: most GPU seconds one Generate may ask for
    # Gradio's cache (uploads, result copies): every hour, files older than a day are deleted.
    delete_cache: tuple[int, int] | None = (3600, 24 * 3600)
    # A1111's HTTP API (studio/sdapi): served or not; its users (None: no auth); why a studio refuses it
    api: bool = True
    api_credentials: Mapping[str, str] | None = field(default=None, hash=False)
    api_refusal: str | None = None


def build_ui(studio: Engine, warmup: Warmup, outputs: OutputFolder | None = None,
             options: PageOptions = PageOptions(), table: FieldTable = TABLE) -> gr.Blocks:
    """The page. The form starts with the starting model's defaults and size range."""
    config = studio.config
    outputs = outputs or OutputFolder(None)
    jobs = SessionJobs()  # running runs by caller, every door's: what Stop may cancel
    service = Service(studio, outputs, jobs, options.gpu_duration_s, warmup.model)  # here, or on ZeroGPU's GPU
    starting = models.resolve_model(warmup.requested)
    form = Form(table, starting, {"model": warmup.model, "preview": options.preview_method,
                                  "fast_decode": options.fast_decode, "task": handlers.own_task(starting)})
    w = form.widget

    def row(*names: str, **overrides: dict) -> None:
        """Fields side by side (`overrides`: a field's widget settings, by its name)."""
        with gr.Row():
            for name in names:
                w(name, **overrides.get(name, {}))

    def choices() -> list[tuple[str, str]]:
        return handlers.model_choices(studio, config.models_dir, config.allow_pickle)

    with gr.Blocks(title="studio", delete_cache=options.delete_cache) as demo:
        gr.Markdown("# studio", elem_id="title")
        # The tab's key: made in the browser when the page opens, sent only in request bodies. Stop
        # and History need it besides Gradio's session id (which travels in URLs).
        tab_key = gr.Textbox("", visible=False, elem_id="tab-key")
        session_box = gr.Textbox("", visible=False, elem_id="session-id")  # for Stop's WebSocket
        stored_history = gr.JSON(None, visible=False)  # the browser's signed history paths, on load
        history_owner = gr.Textbox("", visible=False, elem_id="history-owner")  # whose entries they are
        notice = gr.Markdown(warmup.notice, elem_id="notice")
        with gr.Row(elem_id="workspace"):  # a grid: see assets.PAGE_CSS
            with gr.Column(elem_id="prompt-block"):
                prompt = w("prompt")
                counter = gr.Markdown(token_counter(None), elem_id="token-count")
                w("negative_prompt")
                negative_counter = gr.Markdown(token_counter(None, "Negative tokens"), elem_id="negative-token-count")
                with gr.Accordion("Styles · prompt as sent", open=False, elem_id="styles-panel") as styles_panel:
                    w("styles", info=None)
                    final_prompt = gr.HTML("", elem_id="final-prompt")
                    parsed = gr.HTML("", elem_id="parsed-view")
            with gr.Column(elem_id="result-block"):
                with gr.Row(elem_id="buttons"):
                    run = gr.Button("Generate", variant="primary", elem_id="generate", scale=3)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, min_width=80)
                status = gr.Markdown("", elem_id="status")
                result = gr.Image(label="Result", format="jpeg", interactive=False, elem_id="result",
                                  buttons=["download", "fullscreen"], show_label=False)
                gallery = gr.Gallery(label="Images of this Generate (click one to show it)", columns=8, height=120,
                                     format="png", type="filepath", interactive=False, elem_id="gallery",
                                     object_fit="contain", allow_preview=False, visible=False)
                infotext = gr.Textbox(label="Infotext", lines=3, interactive=False, elem_id="infotext")
                with gr.Row(elem_id="send-row"):
                    seed_used = gr.Textbox("", label="Seed of the image shown", interactive=False, elem_id="seed_used",
                                           min_width=120)
                    to_img2img = gr.Button("→ img2img", size="sm", elem_id="send-img2img", min_width=64)
                    to_inpaint = gr.Button("→ Inpaint", size="sm", elem_id="send-inpaint", min_width=64)
                    to_edit = gr.Button("→ Edit", size="sm", elem_id="send-edit", min_width=64)
                    to_upscale = gr.Button("→ Upscale", size="sm", elem_id="send-upscale", min_width=64)
                    to_outpaint = gr.Button("→ Outpaint", size="sm", elem_id="send-outpaint", min_width=64)
                picked = gr.State(None)  # the gallery image clicked last
                picked_seed = gr.State(None)  # its seed (else the first image's): what Reuse takes
            with gr.Column(elem_id="settings-block"):
                task = w("task")
                with gr.Row():
                    model = w("model", scale=5, info=None)
                    refresh = gr.Button("↻", scale=0, min_width=40, elem_id="refresh-models")
                with gr.Row(visible=False, elem_id="model-note-row") as model_note_row:
                    model_note = gr.Markdown("", elem_id="model-note")
                    use_recommended = gr.Button("Use recommended", size="sm", scale=0, min_width=140,
                                                elem_id="use-recommended")
                with gr.Row():
                    w("sampler", info=None)
                    w("schedule", info=None)
                with gr.Row():
                    w("steps")
                    w("cfg_scale", info=None)
                with gr.Row(elem_id="size-row"):
                    width = w("width")
                    height = w("height")
                    aspect = gr.Dropdown(list(ASPECT_RATIOS), value=handlers.aspect_name(form.values["width"],
                                                                         form.values["height"]),
                                         label="Aspect", elem_id="aspect",
                                         min_width=90, scale=0)
                    swap = gr.Button("⇅", scale=0, min_width=44, elem_id="swap-size")
                with gr.Row():
                    seed = w("seed", scale=2, info=None, min_width=120)
                    with gr.Column(scale=0, min_width=76):
                        random_seed = gr.Button("Random", size="sm", elem_id="random-seed")
                        reuse_seed = gr.Button("Reuse", size="sm", elem_id="reuse-seed")
                    w("batch_count", info=None, min_width=110)
                    w("batch_size", info=None, min_width=110)
                with gr.Tabs(elem_id="tasks", selected=form.values["task"] or "txt2img") as tabs:
                    with gr.Tab("Text to image", id="txt2img", elem_id="tab-txt2img") as tab_txt2img:
                        with gr.Accordion("Hires fix", open=False, elem_id="hires-panel") as hires_panel:
                            hires = w("hires")
                            row("hires_upscaler", "hires_scale", hires_upscaler={
                                "choices": upscale_view.choices(config, hires=True), "allow_custom_value": True})
                            row("hires_steps", "hires_strength")
                    with gr.Tab("Image to image", id="img2img", elem_id="tab-img2img") as tab_img2img:
                        init_image = w("init_image")
                        sd_upscaler = upscale_view.build_sd_upscale(form, config)
                    with gr.Tab("Inpaint", id="inpaint", elem_id="tab-inpaint") as tab_inpaint:
                        editor = BoundedImageEditor(
                            type="pil", label="Load a picture, then paint over what to repaint", height=420,
                            sources=["upload", "clipboard"], transforms=[], layers=False, elem_id="inpaint-editor",
                            format="png",  # lossless: pixels outside the mask must stay the picture's own
                            brush=gr.Brush(colors=[("#ffffff", BoundedImageEditor.MASK_OPACITY)],  # see-through
                                           color_mode="fixed", default_size="auto"),
                        )
                        row("inpaint_mode", "mask_blur")
                        row("masked_content", "inpaint_area", "masked_padding")
                        with gr.Accordion("Upload a mask instead of painting", open=False):
                            w("mask")
                    with gr.Tab("Edit", id="edit", elem_id="tab-edit") as tab_edit:
                        edits = edit_view.build(form)
                    with gr.Tab("Upscale", id="upscale", elem_id="tab-upscale") as tab_upscale:
                        upscales = upscale_view.build(form, config)
                    with gr.Tab("Outpaint", id="outpaint", elem_id="tab-outpaint") as tab_outpaint:
                        outpaints = outpaint_view.build(form)
                # img2img's and inpaint's own: shown on those tabs only (one widget per setting).
                with gr.Row(visible=form.values["task"] in STRENGTH_TASKS, elem_id="strength-row") as strength_row:
                    w("denoising_strength")
                    w("resize_mode")
                details = detail_view.build(form)  # the detailer (ADetailer): after text / image to image
                upscale_view.build_faces(form, config)  # A1111's Restore faces
                networks = networks_view.build(config)  # the LoRA and embedding rows
                controls = control_view.Controls(control_view.build_units(config.controlnets_dir),
                                                 control_view.build_slots(config.controlnets_dir))
                xyz_view.build(form)  # A1111's X/Y/Z plot: an axis chosen, Generate makes the plot
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    row("prompt_syntax", "clip_skip")
                    row("preview", "fast_decode")
                with gr.Accordion("More settings", open=False, elem_id="more-settings"):
                    for name in form.remaining():
                        w(name)
                # History and PNG Info end the settings column: the result stays in view beside them.
                with gr.Accordion("History", open=False, elem_id="history"):
                    history = gr.State(handlers.History())  # this tab's image paths, newest first, under its key
                    history_gallery = gr.Gallery(label="This tab's images, newest first (kept in this browser)",
                                                 columns=6, height=300, interactive=False, type="filepath",
                                                 elem_id="history-gallery")
                    with gr.Row():
                        history_text = gr.Textbox(label="Infotext", lines=3, interactive=False,
                                                  elem_id="history-text", scale=4)
                        with gr.Column(scale=1):
                            restore_button = gr.Button("Restore these settings", elem_id="restore")
                            history_to_edit = gr.Button("→ Edit", size="sm", elem_id="history-send-edit")
                            history_note = gr.Markdown("", elem_id="history-note")
                    history_pick = gr.State(None)
                png = restore.build_png_info()

        runs_on = gr.Markdown("", elem_id="runs-on")  # the device, or every replica's (asked on each load)

        # -- generation: the page's event (every form component by name) and the typed API ---------
        shown = {"gallery": gallery, "infotext": infotext, "seed": seed_used, "status": status, "preview": result,
                 "history": history, "picked": picked, "picked_seed": picked_seed}
        # While the Generate waits its turn, the status says how many are ahead (over a WebSocket:
        # studio/web/connections.py). Defined first: the page sends a click's events in this order.
        run.click(None, inputs=[tab_key, session_box], js=QUEUE_JS, **PRIVATE)
        # The button says "Generating…" from the click until this tab's run ends (however it ends). Before
        # the Generate event: the page runs a click's events in order, each after the one before.
        run.click(None, js=GENERATE_STARTS, **PRIVATE)
        event = run.click(  # Ctrl+Enter clicks it too (assets.PAGE_HEAD); Enter in a prompt is a new line
            fn=reported(handlers.make_generate(service, form, editor, tab_key, shown, controls, edits)),
            inputs={*form.components.values(), editor, history, tab_key, *controls.inputs(), *edits.inputs()},
            outputs=[*shown.values(), *controls.maps()],
            api_name="page_generate",
            api_visibility="private",  # API clients use /generate below, typed from the field table
            show_progress="hidden",  # the status line and the result area say where it is
            concurrency_id=GPU_SLOT,
            concurrency_limit=studio.slots,  # 1 on one device; one per replica on a cluster
        )
        documented_api(reported(make_generate_api(service, table, lambda: warmup.model)), api_name="generate",
                       concurrency_id=GPU_SLOT, concurrency_limit=studio.slots)
        # Stop removes the visitor's waiting requests and ends their running one; it never waits for the
        # GPU slot. Not Gradio's `cancels=`: that cancels by session id alone, which travels in URLs.
        guard = QueueGuard(GPU_SLOT, tab_key, options.max_queued, page_fns=["page_generate"])
        # The page's Stop and the queue position answer at once with any number of tabs open
        # (studio/web/connections.py); API clients stop through `/stop`.
        stop_answer = gr.Textbox("", visible=False, elem_id="stop-answer")  # what the last Stop said
        stop.click(None, inputs=[tab_key, session_box], outputs=stop_answer, js=STOP_JS, **PRIVATE)
        documented_api(reported(handlers.make_stop(jobs, guard)), api_name="stop", queue=False)
        signer = HistorySigner()
        event.then(reported(handlers.make_history_view(signer)), inputs=[history, tab_key, history_owner],
                   outputs=[history_gallery, stored_history], **PRIVATE
                   ).then(None, inputs=stored_history, js=SAVE_HISTORY, **PRIVATE)  # kept in the browser
        event.then(lambda: gr.update(choices=choices()), outputs=model, **PRIVATE)
        event.then(None, js=GENERATE_ENDS, **PRIVATE)  # the button busy since the click is Generate again

        control_view.wire(controls.units, width, height)  # each unit's "Preview map"
        control_view.wire_models(controls, model)  # the ControlNet / adapter boxes list what fits the model

        # -- prompt: what Generate would send, counted and parsed -----------------------------------
        preview_prompt = reported(make_prompt_preview(studio))
        prompt_inputs = [prompt, form.components["negative_prompt"], form.components["styles"],
                         form.components["prompt_syntax"], model, form.components["steps"]]
        prompt_outputs = [counter, negative_counter, final_prompt, parsed]
        gr.on(triggers=[c.change for c in prompt_inputs], fn=preview_prompt, inputs=prompt_inputs,
              outputs=prompt_outputs, trigger_mode="always_last", **PRIVATE)
        event.then(preview_prompt, inputs=prompt_inputs, outputs=prompt_outputs, **PRIVATE)  # counts once loaded
        documented_api(make_parse_prompt(studio), api_name="parse_prompt", concurrency_limit=None)  # typed: model is free text

        # -- form helpers ---------------------------------------------------------------------------
        for tab, name in ((tab_txt2img, "txt2img"), (tab_img2img, "img2img"), (tab_inpaint, "inpaint"),
                          (tab_edit, "edit"), (tab_upscale, "upscale"), (tab_outpaint, "outpaint")):
            tab.select(lambda name=name: name, outputs=task, **PRIVATE)
        task.change(lambda t: (gr.Row(visible=t in STRENGTH_TASKS), gr.update(visible=t in IMAGE_TASKS)), inputs=task,
                    outputs=[strength_row, form.components["resize_mode"]], **PRIVATE)  # Resize mode: not outpaint's
        detail_view.wire(details, task, PRIVATE)  # shown for txt2img / img2img, titled when on
        form.components["styles"].change(
            lambda names: gr.Accordion(label=f"Styles: {', '.join(names)} · prompt as sent" if names
                                       else "Styles · prompt as sent"),
            inputs=form.components["styles"], outputs=styles_panel, **PRIVATE)
        hires_fields = [hires, form.components["hires_scale"], form.components["hires_upscaler"]]
        gr.on(triggers=[c.change for c in hires_fields], fn=handlers.hires_label, inputs=hires_fields,
              outputs=hires_panel, **PRIVATE)
        networks_view.wire(networks, config, prompt, form.components["negative_prompt"], refresh, PRIVATE)
        switched = [form.components[name] for name in handlers.MODEL_DEFAULTS]

        def model_picked(name: str, *values: Any) -> dict:
            """A model picked by the user keeps the settings that fit it and offers its recommended ones."""
            try:
                updates, note, differs = handlers.model_switch(name, dict(zip(handlers.MODEL_DEFAULTS, values)))
            except StudioError:  # a half-typed name or path: leave the form alone
                return {}
            return {**{form.components[n]: u for n, u in updates.items()}, model_note: note,
                    model_note_row: gr.Row(visible=bool(note)), use_recommended: gr.Button(visible=differs),
                    notice: restore.model_notice(models.resolve_model(name)),
                    **({tabs: gr.Tabs(selected="edit")} if updates.get("task") == "edit" else {})}

        family_fields = [form.components[n] for n in restore.family_visibility(form.source)]  # True CFG (FLUX)
        model.input(reported(model_picked), inputs=[model, *switched],
                    outputs=[*switched, *family_fields, task, tabs, model_note, model_note_row, use_recommended, notice],
                    **PRIVATE)

        def apply_recommended(name: str) -> dict:
            updates = handlers.model_form_updates(name)
            return {**{form.components[n]: updates[n] for n in handlers.MODEL_DEFAULTS},
                    model_note: "", model_note_row: gr.Row(visible=False)}

        use_recommended.click(reported(apply_recommended), inputs=model, outputs=[*switched, model_note, model_note_row],
                              **PRIVATE)
        refresh.click(lambda: gr.update(choices=choices()), outputs=model, **PRIVATE)
        aspect.input(reported(handlers.aspect_size), inputs=[aspect, model], outputs=[width, height], **PRIVATE)
        swap.click(lambda w_, h_: (h_, w_, handlers.aspect_name(h_, w_)), inputs=[width, height],
                   outputs=[width, height, aspect], **PRIVATE)
        gr.on(triggers=[width.change, height.change], fn=handlers.aspect_name, inputs=[width, height],
              outputs=aspect, **PRIVATE)  # the Aspect box names the size's ratio, or none
        init_image.upload(reported(handlers.image_size), inputs=[init_image, model], outputs=[width, height], **PRIVATE)
        random_seed.click(lambda: -1, outputs=seed, **PRIVATE)
        reuse_seed.click(lambda used: gr.skip() if used is None else used, inputs=picked_seed, outputs=seed, **PRIVATE)
        gallery.select(reported(handlers.show_picked), inputs=gallery, outputs=[infotext, picked, picked_seed, result,
                                                                                 seed_used], **PRIVATE)
        for button, target, tab, title in ((to_img2img, init_image, "img2img", "Image to image"),
                                           (to_inpaint, editor, "inpaint", "Inpaint"),
                                           (to_upscale, upscales.picture, "upscale", "Upscale"),
                                           (to_outpaint, outpaints.picture, "outpaint", "Outpaint")):  # shown where it landed
            upscale_view.wire_send(button, handlers.picked_image, [gallery, picked], target, tabs, task, tab,
                                   sent("#tasks", f"Sent to {title}"), PRIVATE)
        upscale_view.wire(upscales, config, refresh, form.components["hires_upscaler"], sd_upscaler, PRIVATE)
        edit_view.wire_sends(edits, [(to_edit, handlers.picked_image, [gallery, picked]), (history_to_edit,
                             edit_view.history_picture, [history_pick])], tabs, task, sent("#tasks", "Sent to Edit"), PRIVATE)
        for unit in controls.units:  # a unit's picture from the shown result or the init image
            unit.use_result.click(reported(handlers.picked_image), inputs=[gallery, picked],
                                  outputs=unit.parts["image"], **PRIVATE)
            unit.use_init.click(reported(handlers.init_picture), inputs=init_image, outputs=unit.parts["image"], **PRIVATE)
        for slot in controls.slots:  # an image prompt's picture from the shown result
            slot.use_result.click(reported(handlers.picked_image), inputs=[gallery, picked], outputs=slot.image,
                                  **PRIVATE)

        # -- history and PNG Info send every setting back to the form ---------------------------------
        UNCHANGED = (restore.NOTHING_PICKED, restore.NOTHING_LOADED)  # notes of a send that changed nothing
        png_info = restore.make_png_info(config.models_dir, config.allow_pickle, table, config.loras_dir,
                                         config.embeddings_dir)
        restore_history = restore.make_restore(form, tabs, history_note, png_info, controls, notice)
        send_to_form = restore.make_send(form, tabs, png.note, controls, notice)
        history_gallery.select(reported(handlers.history_picked), inputs=history_gallery,
                               outputs=[history_text, history_pick], **PRIVATE)
        restore_button.click(reported(restore_history), inputs=[history_pick, model],  # fitted to the form's model
                             outputs=restore.restorable_outputs(form, tabs, history_note, controls, notice), **PRIVATE
                             ).success(None, inputs=history_note, **PRIVATE,
                                       js=sent("#prompt-block", "Settings restored from History", UNCHANGED))
        png.file.change(reported(png_info), inputs=png.file, outputs=[png.text, png.fields], api_name="png_info")
        png.fields.change(restore.settings_markdown, inputs=png.fields, outputs=png.table, **PRIVATE)
        png.send.click(reported(send_to_form), inputs=[png.fields, model],
                       outputs=restore.restorable_outputs(form, tabs, png.note, controls, notice), **PRIVATE
                       ).success(None, inputs=png.note, js=sent("#prompt-block", "Sent to the form", UNCHANGED),
                                 **PRIVATE)

        # -- start-up: the tab's key and its stored history, loaded markers, the warm-up's notice ------
        demo.load(lambda: gr.update(choices=choices()), outputs=model, **PRIVATE)
        demo.load(reported(lambda: handlers.runs_on(studio)), outputs=runs_on, **PRIVATE)
        demo.load(session_id, outputs=session_box, api_visibility="private", **QUICK)
        demo.load(None, js=OPEN_TAB, outputs=[tab_key, stored_history, history_owner], **PRIVATE).then(
            reported(lambda entries, key, owner: handlers.reopened_history(
                signer.verify(entries, owner, HISTORY_LIMIT), key)),
            inputs=[stored_history, tab_key, history_owner], outputs=[history, history_gallery], **PRIVATE)
        timer = gr.Timer(1.0)
        preset_fields = ["model", *handlers.MODEL_DEFAULTS]

        def poll() -> dict[Any, Any]:
            done = gr.Timer(active=not warmup.done.is_set())
            if warmup.model == warmup.requested:
                return {notice: warmup.notice, timer: done}
            # Fell back: switch the form to the fallback model and its own defaults and sizes.
            updates = handlers.model_form_updates(warmup.model)
            return {notice: warmup.notice, timer: done, **{form.components[n]: updates[n] for n in preset_fields}}

        timer.tick(reported(poll), outputs=[notice, timer, *(form.components[n] for n in preset_fields)], **PRIVATE
                   ).then(preview_prompt, inputs=prompt_inputs, outputs=prompt_outputs, **PRIVATE)
    demo.queue(max_size=options.queue_size, default_concurrency_limit=1)
    guard.install(demo)
    without_heartbeat(demo)
    # The parts tests and tools reach for: the widgets by field name, and the restore handlers.
    # launch_kwargs: what launch() needs besides the page (its CSS and scripts, the guard in front of /cancel).
    routes = [stop_route(lambda session, key: handlers.stop_visitor(jobs, guard, session, key)),
              queue_route(handlers.make_queue_line(jobs, guard, studio.slots))]
    app_kwargs = {"middleware": [Middleware(CancelGuard, guard=guard), Middleware(StreamGuard, guard=guard)],
                  "routes": routes}
    if options.api:  # A1111's /sdapi/v1 next to the page, on the same engine, outputs and run registry
        api = SdApi(service, lambda: warmup.model, options.max_queued)
        routes += build_router(api, options.api_credentials, options.api_refusal).routes
    demo.studio_parts = SimpleNamespace(app_kwargs=app_kwargs,
                                        launch_kwargs={"head": PAGE_HEAD + SOCKET_HEAD, "css": PAGE_CSS, "app_kwargs": app_kwargs},
                                        form=form, tabs=tabs, png_info=png_info, restore_history=restore_history,
                                        send_to_form=send_to_form, history_note=history_note, png_note=png.note,
                                        units=controls.units, controls=controls)
    return demo
