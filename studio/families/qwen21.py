"""Qwen-Image 2.1: one 7B single-stream, block-causal transformer that generates from text and edits
with reference pictures, conditioned on a Qwen3-VL that reads the prompt *and* the pictures (each one a
`<imageN>` block of vision slots in the prompt's template). Its own VAE decodes RGBA: 64 channels, 16x
down, one frame, normalised per channel by the VAE's mean and std, handed to the transformer unpatched
(the `qwen21` latent layout). Real CFG with the negative prompt (`true_cfg_scale`, two passes a step),
off by default as Qwen recommends (40 steps, CFG 1).

Prompts are read as an LLM reads them (studio/families/llm.py: plain words, weights ignored with a
word). The pipeline encodes them itself, bit for bit its own: diffusers 0.42.1's `__call__` cannot take
given embeddings beside reference pictures (it has no `image_pad_mask` argument, and the transformer
must know which of the prompt's positions are picture slots), and a family's conditioning is not told
whether the request edits. `qwen21_encode` is that same encoding, for the prompt encoder.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, LatentFormat, PreviewData, SizeRule
from .llm import encoder_for
from .t5 import plain_text

if TYPE_CHECKING:
    from ..conditioning import Conditioning

PIPELINE = "QwenImage21Pipeline"
MAX_REFERENCES = 4  # Qwen reads up to 10; the studio's Edit tab holds 4, and each adds ~4k tokens a step


def output_resolution(pipe: Any) -> int:
    """The side of the square area the pipeline sizes each reference picture to (its `output_resolution`:
    1024 in diffusers 0.42.1), read from its signature so it follows the library."""
    return int(inspect.signature(type(pipe).__call__).parameters["output_resolution"].default)


def sized_pictures(pipe: Any, pictures: tuple) -> list:
    """The reference pictures as the pipeline hands them to its encoder: RGB as the edit task passes them,
    made RGBA, each resized to `output_resolution` squared at its own aspect (multiples of 32)."""
    from diffusers.pipelines.qwenimage21 import pipeline_qwenimage21 as qwen21

    area, sized = output_resolution(pipe) ** 2, []
    for picture in pictures:
        picture = picture.convert("RGB").convert("RGBA")
        width, height, _ = qwen21.calculate_dimensions(area, picture.width / picture.height)
        sized.append(pipe.image_processor.resize(picture, width=width, height=height))
    return sized


def qwen21_encode(pipe: Any, text: str, pictures: tuple = ()) -> tuple[Any, Any]:
    """QwenImage21Pipeline's own encoding: (embeddings, mask; None when every token counts). With
    pictures, the instruction's template holds one vision block per picture, as in an edit."""
    embeds, mask, _slots = pipe.encode_prompt(prompt=[text], image=sized_pictures(pipe, pictures) or None,
                                              device=pipe.text_encoder.device)
    return embeds, mask


def qwen21_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """Both prompts' plain words, for the pipeline to encode (with the pictures on an edit). It encodes
    the negative prompt only where real CFG runs (CFG scale above 1)."""
    return {"prompt": plain_text(plan.parsed), "negative_prompt": plain_text(plan.negative_parsed)}


def qwen21_token_counts(pipe: Any, parsed: Any) -> list[int]:
    """The prompt's tokens in the pipeline's text-to-image template, as its processor tokenizes it."""
    wrapped = pipe.prompt_template_t2i.format(plain_text(parsed) or " ")  # the pipeline reads "" as " "
    return [len(pipe.processor.tokenizer(wrapped)["input_ids"])]


# No latent->RGB factors are fitted for 2.1's VAE here (that needs its real weights: least squares of
# decoded RGB on normalised latents). Until then a stand-in: Wan 2.1's 16 x 3 factors (Qwen-Image's, on
# the same kind of per-channel normalised latents) repeated over the 64 channels and halved, so the
# projection keeps their output's spread. It shows the layout of x0, not its true colours; the `vae`
# preview is exact.
QWEN21_LATENT = LatentFormat(
    "qwen21", channels=64, scale=1.0, downscale=16, layout="qwen21",
    preview=PreviewData(tuple(tuple(v / 2 for v in row) for _ in range(4) for row in latents.QWEN.preview.latent_rgb_factors),
                        latents.QWEN.preview.latent_rgb_bias, None),  # no TAESD in diffusers' format is known
)

QWEN_IMAGE21 = Family(
    name="qwen_image21",
    title="Qwen-Image 2.1",
    text_encoders=(1, "whole"),
    pipelines={"txt2img": PIPELINE, "edit": PIPELINE},  # one pipeline: pictures given make it an edit
    # diffusers has no 2.1 inpainting pipeline; the field must name a class, and this one never loads as
    # 2.1 (it is Qwen-Image's, found first), so no 2.1 model is taken for an inpainting one.
    inpaint_model_pipeline="QwenImageInpaintPipeline",
    single_file_config="Qwen/Qwen-Image-2.1",
    # its text projection's norm, as diffusers' single-file loader tells 2.1 apart (original and diffusers names)
    checkpoint_keys=("txt_in.text_norm.", "model.diffusion_model.txt_in.text_norm."),
    detect_order=1,
    latent=QWEN21_LATENT,
    # The pipeline floors sizes to multiples of 32 (16x VAE, 2x2 latent tokens per vision slot); 1024 x 1024
    # is its own default (output_resolution).
    size=SizeRule(multiple=32, low=256, high=2048, default=1024),
    prompt_encoder=encoder_for(qwen21_encode),
    prompt_editing=False,  # its text positions and mask are fixed from the prompt before the steps
    conditioning=qwen21_conditioning,
    count_tokens=qwen21_token_counts,
    tiny=Lazy("studio.tiny_qwen21:build_tiny_qwen21"),
    clip_skip=False,
    gpu_s_per_mp_step=0.6,  # 7B, one pass a step (CFG doubles it), references lengthen it: an estimate
    defaults={"steps": 40, "cfg_scale": 1.0, "sampler": "Euler"},  # Qwen's: 40 steps, no guidance
    sampler_kind="flow",
    denoiser="transformer",
    denoiser_class="QwenImage21Transformer2DModel",
    cfg_argument="true_cfg_scale",
    weighted=False,
    latent_img2img=False,
    references=MAX_REFERENCES,
    encoder_reads_references=True,
    # The pipeline hands the scheduler its own sigmas (and mu), which the multistep solvers cannot take.
    samplers=("Euler", "Euler a", "LCM"),
)
