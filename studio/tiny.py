"""Tiny random-weight pipelines: the offline `tiny` / `tiny-xl` models used by tests and the demo.

Their images are noise by design: the weights are random. They exist so that every code path
(tokenizer, text encoder, UNet, VAE, schedulers, SDXL's second encoder and pooled embedding) runs
offline in well under a second, deterministically.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

TINY_SEED = 20240229
TOKENIZER_MAX_LENGTH = 77

# Byte-level BPE alphabet as CLIP builds it: printable latin-1 bytes map to themselves, the rest
# are shifted past 255 so that every byte has a visible character.
def _byte_alphabet() -> list[str]:
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def write_tiny_tokenizer(folder: Path) -> Path:
    """Write a CLIP tokenizer whose vocabulary is every byte character, with and without `</w>`."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    # An empty merge list: every word splits into single characters, which is all tests need.
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def tiny_tokenizer(folder: Path | None = None):
    """Load (building it first in a temporary folder if needed) the generated CLIP tokenizer."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="studio-tok-") as tmp:
            return CLIPTokenizer.from_pretrained(
                str(write_tiny_tokenizer(Path(tmp))), model_max_length=TOKENIZER_MAX_LENGTH
            )
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=TOKENIZER_MAX_LENGTH)


def _text_config(hidden: int, projection: int | None = None):
    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        hidden_size=hidden,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        vocab_size=1000,  # above the generated vocabulary (514 tokens)
        hidden_act="gelu",
        projection_dim=projection or hidden,
        max_position_embeddings=TOKENIZER_MAX_LENGTH,
    )


def _tiny_vae():
    return AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    )


def _tiny_unet(**family_specific) -> UNet2DConditionModel:
    """Two small blocks, attention in the second: the smallest UNet that runs every code path."""
    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        **family_specific,
    )


def _sd_scheduler():
    # The scheduler config SD 1.5 ships with (PNDM in the original repo; the sampler registry
    # rebuilds whatever the user picks from this config).
    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )


def build_tiny_sd15():
    """An SD-1.5-shaped StableDiffusionPipeline with random weights (deterministic)."""
    with torch.random.fork_rng(devices=[]):  # never disturb the caller's global RNG
        torch.manual_seed(TINY_SEED)
        unet = _tiny_unet(cross_attention_dim=32, norm_num_groups=32)
        vae = _tiny_vae()
        text_encoder = CLIPTextModel(_text_config(32))
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tiny_tokenizer(),
        scheduler=_sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe


def build_tiny_sdxl():
    """An SDXL-shaped StableDiffusionXLPipeline: two text encoders, the second with projection."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        unet = _tiny_unet(
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80,  # 6 * addition_time_embed_dim + 32 pooled
            cross_attention_dim=64,  # both encoders' hidden states side by side
            norm_num_groups=1,
        )
        vae = _tiny_vae()
        text_encoder = CLIPTextModel(_text_config(32))
        text_encoder_2 = CLIPTextModelWithProjection(_text_config(32, projection=32))
    tokenizer = tiny_tokenizer()
    return StableDiffusionXLPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=_sd_scheduler(),
        force_zeros_for_empty_prompt=True,
    )


def build_tiny_taesd(latent_channels: int = 4) -> AutoencoderTiny:
    """A random-weight TAESD-shaped decoder for the tiny models' `taesd` previews (offline)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        return AutoencoderTiny(
            encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
            num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=latent_channels,
        ).eval()


TINY_BUILDERS = {"sd15": build_tiny_sd15, "sdxl": build_tiny_sdxl}
