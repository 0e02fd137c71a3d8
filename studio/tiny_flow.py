"""Tiny random-weight pipelines of the flow-matching families (FLUX.1 dev and schnell, SD3.5).

Like `tiny.py`'s SD models: random weights (their images are noise), built offline in well under a
second, deterministic, shaped like the real ones where it matters to the code: a 16-channel VAE
that downsamples 8x with a shift factor, 2x2-packed latents, a T5 encoder with a generated Unigram
tokenizer beside the CLIP one, distilled guidance (dev) or none (schnell).
"""

from __future__ import annotations

import torch
from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel,
                       SD3Transformer2DModel, StableDiffusion3Pipeline)
from transformers import CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel, T5Tokenizer

from .tiny import TINY_SEED, _text_config, tiny_tokenizer

T5_WIDTH = 32
T5_MAX_LENGTH = 512  # FLUX.1's max_sequence_length (dev); schnell uses 256


def tiny_t5_tokenizer() -> T5Tokenizer:
    """A SentencePiece-style Unigram tokenizer built in memory: every printable ASCII character,
    alone and after the word-start mark, so any text tokenizes (unknown characters become <unk>)."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    for code in range(33, 127):
        char = chr(code)
        pieces += [(char, -3.0), ("\u2581" + char, -2.5)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)


def _t5(width: int = T5_WIDTH) -> T5EncoderModel:
    return T5EncoderModel(T5Config(
        vocab_size=256, d_model=width, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", decoder_start_token_id=0,
    )).eval()


def _flow_vae(scale: float = 0.3611, shift: float = 0.1159) -> AutoencoderKL:
    """Four blocks: 8x downsampling as the real FLUX / SD3 VAEs; 16 latent channels, scale and shift."""
    return AutoencoderKL(
        block_out_channels=(16, 16, 16, 16), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=16, norm_num_groups=8, sample_size=64, layers_per_block=1,
        scaling_factor=scale, shift_factor=shift, use_quant_conv=False, use_post_quant_conv=False,
    )


def _flux_scheduler(dev: bool) -> FlowMatchEulerDiscreteScheduler:
    if dev:  # FLUX.1-dev's scheduler config: resolution-dependent shift
        return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                               base_image_seq_len=256, max_image_seq_len=4096)
    return FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)


def build_tiny_flux(dev: bool = True) -> FluxPipeline:
    """A FLUX.1-shaped pipeline: dev (distilled guidance embedding) or schnell (no guidance)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=T5_WIDTH, pooled_projection_dim=32,
            guidance_embeds=dev, axes_dims_rope=(4, 6, 6),
        )
        vae = _flow_vae()
        text_encoder = CLIPTextModel(_text_config(32)).eval()
        text_encoder_2 = _t5()
    return FluxPipeline(
        transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(),
        text_encoder_2=text_encoder_2, tokenizer_2=tiny_t5_tokenizer(), scheduler=_flux_scheduler(dev),
    )


def build_tiny_flux_schnell() -> FluxPipeline:
    return build_tiny_flux(dev=False)


SD3_T5_WIDTH = 64  # both CLIP widths side by side (32 + 32) must fit in it: they are zero-padded up to it


def build_tiny_sd3() -> StableDiffusion3Pipeline:
    """An SD3.5-shaped pipeline: an MMDiT with a dual-attention layer and RMS q/k norms, two CLIPs with
    projections plus T5, the 16-channel VAE with SD3's scale and shift, SD3's shift-3 flow scheduler."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        transformer = SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=SD3_T5_WIDTH, caption_projection_dim=32,
            pooled_projection_dim=64, pos_embed_max_size=64, dual_attention_layers=(0,), qk_norm="rms_norm",
        )
        vae = _flow_vae(scale=1.5305, shift=0.0609)
        clip_l = CLIPTextModelWithProjection(_text_config(32, projection=32)).eval()
        clip_g = CLIPTextModelWithProjection(_text_config(32, projection=32)).eval()
        t5 = _t5(SD3_T5_WIDTH)
    tokenizer = tiny_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=vae, text_encoder=clip_l, tokenizer=tokenizer, text_encoder_2=clip_g,
        tokenizer_2=tokenizer, text_encoder_3=t5, tokenizer_3=tiny_t5_tokenizer(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
