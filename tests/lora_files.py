"""A tiny LoRA for tests: random PEFT adapters on the tiny model's UNet and text encoder, saved as a
diffusers-format .safetensors file (what `save_lora_weights` writes)."""

from __future__ import annotations

from pathlib import Path

import torch


def write_tiny_lora(folder: Path, name: str = "detail", seed: int = 0, family: str = "sd15") -> Path:
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from studio.tiny import TINY_BUILDERS

    pipe = TINY_BUILDERS[family]()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                          target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
        pipe.text_encoder.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                                 target_modules=["q_proj", "v_proj"]))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=get_peft_model_state_dict(pipe.unet),
        text_encoder_lora_layers=get_peft_model_state_dict(pipe.text_encoder),
        weight_name=f"{name}.safetensors",
    )
    return folder / f"{name}.safetensors"
