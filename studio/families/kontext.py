"""FLUX.1 Kontext [dev]: FLUX.1 dev's transformer trained to edit, reading one reference picture's
tokens beside the generated ones; everything else is FLUX.1's (T5 + CLIP prompts with weighting,
distilled guidance, 2x2-packed latents). It also generates from text alone.

Its single files carry FLUX.1's tensor names, so a Kontext file is read as FLUX.1 unless a preset or a
hub id names it (`flux1-kontext-dev`).
"""

from __future__ import annotations

import dataclasses

from ..lazy import Lazy
from .flux import FLUX

KONTEXT = dataclasses.replace(
    FLUX,
    name="kontext",
    title="FLUX.1 Kontext",
    pipelines={"txt2img": "FluxKontextPipeline", "edit": "FluxKontextPipeline", "inpaint": "FluxKontextInpaintPipeline"},
    # Its inpaint pipeline would resize the picture to one of Kontext's own sizes (672 px and up): the
    # picture keeps the size asked for, so the unmasked pixels composite back in place.
    call_arguments={"FluxKontextInpaintPipeline": {"_auto_resize": False}},
    inpaint_model_pipeline="FluxKontextInpaintPipeline",
    single_file_config="black-forest-labs/FLUX.1-Kontext-dev",
    checkpoint_keys=(),  # FLUX.1's names: never told apart from a FLUX.1 file by its keys
    detect_order=99,
    tiny=Lazy("studio.tiny_flow:build_tiny_kontext"),
    tiny_variants={},
    control_pipelines={},
    image_prompts=False,
    latent_img2img=False,
    references=1,
    # FluxKontextPipeline hands the scheduler its own sigmas, which the multistep solvers cannot take.
    samplers=("Euler", "Euler a", "LCM"),
    defaults={"steps": 28, "cfg_scale": 2.5, "sampler": "Euler"},  # Kontext dev's model card
)
