"""The page's Upscale tab (A1111's Extras "Upscale"): a picture, an upscaler (a pixel filter or a model
of the upscalers folder), scale by a factor or to a size, a second upscaler blended over the first.
Generate runs it as the `upscale` task (studio/tasks/upscale.py): no diffusion model loads, progress
counts tiles, Stop lands between them, and the result is saved with its picture's own infotext plus
A1111's Postprocess keys. The upscaler lists (here and hires fix's) are the folder's files, read again
by the ↻ button.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from .. import upscalers
from ..config import StudioConfig
from ..upscalers import folder
from ..upscalers.library import INSTALL, available
from .calls import reported


def choices(config: StudioConfig, hires: bool = False) -> list[str]:
    """The upscalers a dropdown offers: the built-ins (hires fix's latent ones too), then the models of
    the upscalers folder (where spandrel is installed to run them)."""
    builtins = list(upscalers.BUILTIN) if hires else list(upscalers.PIXEL_FILTERS)
    models = folder.names(config.upscalers_dir, config.allow_pickle) if available() else []
    faces = set(face_choices(config))  # face restorers are not upscalers (the Restore faces panel lists them)
    return builtins + [name for name in models if name not in faces]


def hint(config: StudioConfig) -> str:
    """What the tab says: that no model is used here, and where its model upscalers come from (or why
    there are none)."""
    return "Generate enlarges the picture below (the prompt and model are not used here). " + _models_hint(config)


def _models_hint(config: StudioConfig) -> str:
    if not available():
        return f"Model upscalers need spandrel (`{INSTALL}`); Lanczos and Nearest work without it."
    if config.upscalers_dir is None:
        return "No upscalers folder: start the studio with `--upscalers-dir <folder>` for ESRGAN-class models."
    have = folder.names(config.upscalers_dir, config.allow_pickle)
    if not have:
        return ("No models in the upscalers folder yet: put ESRGAN / Real-ESRGAN / 4x-UltraSharp / SwinIR / DAT "
                "files (`.safetensors`; `.pth` with `--allow-pickle`) in it and press ↻.")
    return f"{len(have)} model upscaler(s) from the upscalers folder; A1111's names (`R-ESRGAN 4x+`) find their files."


@dataclass
class UpscaleView:
    picture: Any
    upscaler: Any
    upscaler_2: Any
    note: Any
    form: Any = None  # the page's form: the face restorer list (placed later, under More settings) is refreshed too


def build(form: Any, config: StudioConfig) -> UpscaleView:
    """The Upscale tab's contents, built in the current layout (inside its gr.Tab)."""
    note = gr.Markdown(hint(config), elem_id="upscale-hint")
    picture = form.widget("upscale_image")
    with gr.Row():
        upscaler = form.widget("upscaler", choices=choices(config), allow_custom_value=True)
        form.widget("upscale_by")
    with gr.Row():
        form.widget("upscale_width")
        form.widget("upscale_height")
        form.widget("upscale_crop")
    with gr.Row():
        upscaler_2 = form.widget("upscaler_2", choices=["None", *choices(config)], allow_custom_value=True)
        form.widget("upscaler_2_visibility")
    gr.Markdown("Restore faces (GFPGAN, A1111's *GFPGAN visibility*): its settings are in the *Restore faces* "
                "panel below; here it runs after the upscalers. ↻ lists the folder's face restorers.",
                elem_id="upscale-faces-hint")
    return UpscaleView(picture, upscaler, upscaler_2, note, form)


def build_sd_upscale(form: Any, config: StudioConfig) -> Any:
    """The Image to image tab's SD upscale panel (studio/tasks/tiled.py); its upscaler list, returned."""
    with gr.Accordion("SD upscale (tiled)", open=False, elem_id="sd-upscale-panel"):
        gr.Markdown("Enlarges the picture, then repaints it in overlapping tiles of **width x height** with this "
                    "tab's prompt and denoising strength (0.2-0.4 adds detail and keeps the picture).")
        form.widget("sd_upscale")
        with gr.Row():
            upscaler = form.widget("sd_upscale_upscaler", choices=choices(config), allow_custom_value=True)
            form.widget("sd_upscale_scale")
        form.widget("sd_upscale_overlap")
    return upscaler


def wire(view: UpscaleView, config: StudioConfig, refresh: Any, hires_upscaler: Any, sd_upscaler: Any,
         private: dict) -> None:
    """↻ reads the upscalers folder again for every upscaler list."""
    def lists() -> tuple:
        return (gr.update(choices=choices(config)), gr.update(choices=["None", *choices(config)]),
                gr.update(choices=choices(config, hires=True)), gr.update(choices=choices(config)), hint(config))

    refresh.click(reported(lists), outputs=[view.upscaler, view.upscaler_2, hires_upscaler, sd_upscaler, view.note],
                  **private)
    restorer = view.form.components.get("face_restorer") if view.form is not None else None
    if restorer is not None:
        refresh.click(reported(lambda: gr.update(choices=face_choices(config))), outputs=restorer, **private)


def build_faces(form: Any, config: StudioConfig) -> None:
    """The Restore faces panel (A1111's "Restore faces"; studio/upscalers/faces.py): after text or image to
    image, and in the Upscale tab after its upscalers."""
    with gr.Accordion("Restore faces (GFPGAN)", open=False, elem_id="faces-panel"):
        form.widget("restore_faces")
        with gr.Row():
            form.widget("face_restorer", choices=face_choices(config), allow_custom_value=True)  # empty: the first
            form.widget("face_restore_visibility")
        with gr.Row():
            form.widget("face_detector")
            form.widget("face_confidence")


def face_choices(config: StudioConfig) -> list[str]:
    """The folder's face restoration models (GFPGAN files), each file read once."""
    from ..upscalers.models import face_restorers

    return face_restorers(config.upscalers_dir, config.allow_pickle) if available() and config.upscalers_dir else []


def wire_send(button: Any, source: Callable[..., Any], inputs: list[Any], target: Any, tabs: Any, task: Any,
              tab: str, landed_js: str, private: dict) -> None:
    """A send button: the source's picture into `target`, then its tab shown (and the task set)."""
    button.click(reported(lambda *args: (source(*args), gr.Tabs(selected=tab), tab)), inputs=inputs,
                 outputs=[target, tabs, task], **private).success(None, js=landed_js, **private)
