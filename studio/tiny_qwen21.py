"""A tiny random-weight Qwen-Image 2.1 pipeline (`QwenImage21Pipeline`): text to image and editing with
reference pictures in one model.

Like `tiny_qwen.py`'s: random weights (its images are noise), built offline in a fraction of a second,
deterministic, shaped like the real one where it matters to the code: the RGBA causal-3D VAE (64 latent
channels, 16x down, five levels, the real per-channel `latents_mean` / `latents_std`), latents handed to
the transformer unpatched (one token per 16 x 16 pixels), a single-stream block-causal transformer with
`causal_condition` (its prefix KV cache on), a Qwen3-VL text encoder whose vision tower cuts 16-pixel
patches merged 2x2 (one vision slot = 32 x 32 pixels = 2x2 latent tokens, which the transformer relies on),
and the Qwen2 BPE tokenizer of `tiny_qwen.py` (the pipeline counts its system tokens itself).
Qwen-Image's exponential dynamic-shift scheduler stands in for 2.1's, whose config is not known here.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLQwenImage21, QwenImage21Pipeline, QwenImage21Transformer2DModel
from transformers import (Qwen2Tokenizer, Qwen2VLImageProcessorPil, Qwen3VLConfig, Qwen3VLForConditionalGeneration,
                          Qwen3VLProcessor)
from transformers.utils import is_torchvision_available

from .tiny import TINY_SEED
from .tiny_qwen import QWEN_VL_CHAT_TEMPLATE, qwen_scheduler, tiny_qwen2_tokenizer

TEXT_WIDTH = 32
LATENT_CHANNELS = 64  # the real VAE's z_dim: the transformer reads them as they are (patch size 1)
PATCH, MERGE = 16, 2  # Qwen3-VL's vision patches and merges: a vision slot covers 32 x 32 pixels


def tiny_qwen3_vl_processor(tokenizer: Qwen2Tokenizer) -> Qwen3VLProcessor:
    """Qwen3-VL's processor with the PIL image processor (no torchvision needed): 16-pixel patches, two
    frames a temporal patch, 2x2 merges, Qwen3-VL's mean and std (0.5). The smallest picture is one
    vision slot, so a picture the pipeline sizes in multiples of 32 is never resized again here."""
    images = Qwen2VLImageProcessorPil(patch_size=PATCH, temporal_patch_size=2, merge_size=MERGE,
                                      min_pixels=(PATCH * MERGE) ** 2, max_pixels=(PATCH * MERGE) ** 2 * 16384,
                                      image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    if is_torchvision_available():
        from transformers import Qwen3VLVideoProcessor

        return Qwen3VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN_VL_CHAT_TEMPLATE,
                                video_processor=Qwen3VLVideoProcessor(patch_size=PATCH, merge_size=MERGE,
                                                                      temporal_patch_size=2))
    # transformers 5 checks each sub-processor's class and Qwen3-VL's video one needs torchvision: without
    # it no Qwen3VLProcessor builds (or loads), so set what its __init__ would (the pipeline passes no videos).
    ids = tokenizer.convert_tokens_to_ids
    processor = Qwen3VLProcessor.__new__(Qwen3VLProcessor)
    processor.__dict__.update(
        chat_template=QWEN_VL_CHAT_TEMPLATE, image_processor=images, tokenizer=tokenizer, video_processor=None,
        image_token="<|image_pad|>", image_token_id=ids("<|image_pad|>"),
        video_token="<|video_pad|>", video_token_id=ids("<|video_pad|>"),
        vision_start_token="<|vision_start|>", vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token="<|vision_end|>", vision_end_token_id=ids("<|vision_end|>"))
    return processor


def _text_encoder(tokenizer: Qwen2Tokenizer) -> Qwen3VLForConditionalGeneration:
    """Qwen3-VL with 2 text layers (grouped-query attention, interleaved multimodal RoPE whose sections add
    up to half a head) and a 2-block vision tower (deepstack from its first block) projecting to the text width."""
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [2, 3, 3],
                             "mrope_interleaved": True},
            bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=37, num_heads=2, out_hidden_size=TEXT_WIDTH, patch_size=PATCH,
            spatial_merge_size=MERGE, temporal_patch_size=2, num_position_embeddings=64, deepstack_visual_indexes=[0],
        ),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen3VLForConditionalGeneration(config).eval()


def _vae() -> AutoencoderKLQwenImage21:
    """Five levels, four of them downsampling (16x, the pipeline assumes it), RGBA in and out, 64 latent
    channels with the real statistics (the defaults). Four channels wide: the pipeline encodes every
    reference at about a megapixel whatever the output size."""
    return AutoencoderKLQwenImage21(base_dim=4, decoder_base_dim=4, z_dim=LATENT_CHANNELS, dim_mult=[1, 1, 1, 1, 1],
                                    num_res_blocks=1, temperal_downsample=[False, True, True, True]).eval()


def _transformer() -> QwenImage21Transformer2DModel:
    """One single-stream block over the joint text / reference / target sequence; RoPE axes summing to
    the head width; `causal_condition` as the real one (text and references modulated at t=0, cached)."""
    return QwenImage21Transformer2DModel(
        patch_size=1, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, num_layers=1, attention_head_dim=16,
        num_attention_heads=2, context_in_dim=TEXT_WIDTH, mlp_ratio=2, axes_dims_rope=(4, 6, 6),
    ).eval()


def build_tiny_qwen21() -> QwenImage21Pipeline:
    """A Qwen-Image-2.1-shaped pipeline: text to image, or edits reading 1+ reference pictures both in the
    VL encoder (through the processor) and in the transformer (VAE latents in the joint sequence)."""
    tokenizer = tiny_qwen2_tokenizer()
    with torch.random.fork_rng(devices=[]):  # never disturb the caller's global RNG
        torch.manual_seed(TINY_SEED)
        text_encoder = _text_encoder(tokenizer)
        transformer = _transformer()
        vae = _vae()
    return QwenImage21Pipeline(scheduler=qwen_scheduler(), vae=vae, text_encoder=text_encoder, transformer=transformer,
                               processor=tiny_qwen3_vl_processor(tokenizer))
