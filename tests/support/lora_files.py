"""A tiny LoRA for tests: random PEFT adapters on the tiny model's UNet and text encoder, saved as a
diffusers-format .safetensors file (what `save_lora_weights` writes)."""

from __future__ import annotations

from pathlib import Path

import torch


def write_tiny_lora(folder: Path, lora: str = "detail", seed: int = 0, family: str = "sd15") -> Path:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from studio.tiny import TINY_BUILDERS

    pipe = TINY_BUILDERS[family]()
    encoders = ["text_encoder"] + (["text_encoder_2"] if family == "sdxl" else [])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                          target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
        for name in encoders:
            getattr(pipe, name).add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                                       target_modules=["q_proj", "v_proj"]))
    folder.mkdir(parents=True, exist_ok=True)
    layers = {f"{name}_lora_layers": get_peft_model_state_dict(getattr(pipe, name)) for name in encoders}
    saver = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    saver.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(pipe.unet),
                            weight_name=f"{lora}.safetensors", **layers)
    return folder / f"{lora}.safetensors"


def write_tiny_flux_lora(folder: Path, lora: str = "flux-detail", seed: int = 0, family: str = "flux") -> Path:
    """A random LoRA on a tiny transformer's attention (FLUX's by default; any family whose denoiser is a
    transformer: klein, qwen_image...), as its pipeline's save_lora_weights writes it."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from studio.families import family as family_of

    pipe = family_of(family).build_tiny()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pipe.transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                                target_modules=["to_q", "to_k", "to_v"]))
    folder.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer),
                                 weight_name=f"{lora}.safetensors")
    return folder / f"{lora}.safetensors"

