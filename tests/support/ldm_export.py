"""Test support: write a diffusers SD-1.x pipeline as an original-LDM single-file checkpoint.

`save_as_single_file` produces the layout A1111 / civitai checkpoints use (``model.diffusion_model.*``,
``first_stage_model.*``, ``cond_stage_model.transformer.text_model.*``). It is the exact inverse of
diffusers' ``convert_ldm_unet_checkpoint`` / ``convert_ldm_vae_checkpoint`` /
``convert_ldm_clip_checkpoint`` (``diffusers/loaders/single_file_utils.py``), derived from the
models' configs so that it works for any SD-1.x-shaped pipeline, the tiny two-block one included.

`save_diffusers_config_folder` writes the weight-less diffusers folder that
``StableDiffusionPipeline.from_single_file(path, config=folder, local_files_only=True)`` reads
the component configs (and the tokenizer and scheduler) from, so that loading needs no network.
"""

from __future__ import annotations

from pathlib import Path

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

# diffusers -> LDM, for the tensors outside the down/mid/up blocks.
_UNET_TOP_LEVEL = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}

# Inside a UNet ResnetBlock2D (the converter's update_unet_resnet_ldm_to_diffusers, inverted).
_UNET_RESNET_PARTS = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}

_VAE_TOP_LEVEL = {
    "encoder.conv_in.": "encoder.conv_in.",
    "encoder.conv_out.": "encoder.conv_out.",
    "encoder.conv_norm_out.": "encoder.norm_out.",
    "decoder.conv_in.": "decoder.conv_in.",
    "decoder.conv_out.": "decoder.conv_out.",
    "decoder.conv_norm_out.": "decoder.norm_out.",
    "quant_conv.": "quant_conv.",
    "post_quant_conv.": "post_quant_conv.",
}

# Inside the VAE mid-block attention (update_vae_attentions_ldm_to_diffusers, inverted).
_VAE_ATTENTION_PARTS = {
    "group_norm.": "norm.",
    "to_q.": "q.",
    "to_k.": "k.",
    "to_v.": "v.",
    "to_out.0.": "proj_out.",
}


def _rename(rest: str, parts: dict[str, str], what: str) -> str:
    for new, old in parts.items():
        if rest.startswith(new):
            return old + rest[len(new):]
    raise KeyError(f"no LDM name for {what} tensor {rest!r}")


def _unet_prefix_map(config) -> dict[str, str]:
    """diffusers module prefix -> LDM module prefix, from the UNet's block layout."""
    down_types = list(config["down_block_types"])
    up_types = list(config["up_block_types"])
    per_block = config["layers_per_block"]
    if not isinstance(per_block, int):
        raise ValueError("only an int layers_per_block maps onto the LDM layout")
    mapping: dict[str, str] = {}

    # input_blocks.0 is conv_in; then every down block has `per_block` (resnet, attention) slots
    # and, except the last one, one downsampler slot.
    for block, kind in enumerate(down_types):
        for layer in range(per_block):
            index = 1 + block * (per_block + 1) + layer
            mapping[f"down_blocks.{block}.resnets.{layer}."] = f"input_blocks.{index}.0."
            if "CrossAttn" in kind:
                mapping[f"down_blocks.{block}.attentions.{layer}."] = f"input_blocks.{index}.1."
        if block < len(down_types) - 1:
            index = 1 + block * (per_block + 1) + per_block
            mapping[f"down_blocks.{block}.downsamplers.0.conv."] = f"input_blocks.{index}.0.op."

    mapping["mid_block.resnets.0."] = "middle_block.0."
    mapping["mid_block.attentions.0."] = "middle_block.1."
    mapping["mid_block.resnets.1."] = "middle_block.2."

    # Every up block has `per_block + 1` slots; the last slot of each block but the final one
    # also holds the upsampler, after the attention when there is one.
    for block, kind in enumerate(up_types):
        attention = "CrossAttn" in kind
        for layer in range(per_block + 1):
            index = block * (per_block + 1) + layer
            mapping[f"up_blocks.{block}.resnets.{layer}."] = f"output_blocks.{index}.0."
            if attention:
                mapping[f"up_blocks.{block}.attentions.{layer}."] = f"output_blocks.{index}.1."
        if block < len(up_types) - 1:
            index = block * (per_block + 1) + per_block
            mapping[f"up_blocks.{block}.upsamplers.0.conv."] = f"output_blocks.{index}.{2 if attention else 1}.conv."
    return mapping


def _unet_to_ldm(unet) -> dict[str, torch.Tensor]:
    config = unet.config
    unsupported = {
        "class_embed_type": None,
        "addition_embed_type": None,
        "num_class_embeds": None,
        "use_linear_projection": False,
    }
    for name, expected in unsupported.items():
        if config.get(name, expected) != expected:
            raise ValueError(f"the LDM export handles SD-1.x UNets only ({name}={config[name]!r})")
    blocks = _unet_prefix_map(config)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in unet.state_dict().items():
        ldm = None
        for new, old in _UNET_TOP_LEVEL.items():
            if key.startswith(new):
                ldm = old + key[len(new):]
                break
        if ldm is None:
            for new, old in blocks.items():
                if key.startswith(new):
                    rest = key[len(new):]
                    if ".resnets." in new:
                        rest = _rename(rest, _UNET_RESNET_PARTS, "UNet resnet")
                    # Transformer blocks keep their diffusers names in the LDM layout.
                    ldm = old + rest
                    break
        if ldm is None:
            raise KeyError(f"no LDM name for UNet tensor {key!r}")
        out[UNET_PREFIX + ldm] = tensor
    return out


def _vae_prefix_map(config) -> dict[str, str]:
    count = len(config["down_block_types"])
    if len(config["up_block_types"]) != count:
        raise ValueError("the LDM VAE layout needs as many up blocks as down blocks")
    per_block = config["layers_per_block"]
    mapping: dict[str, str] = {}
    for block in range(count):
        for layer in range(per_block):
            mapping[f"encoder.down_blocks.{block}.resnets.{layer}."] = f"encoder.down.{block}.block.{layer}."
        if block < count - 1:
            mapping[f"encoder.down_blocks.{block}.downsamplers.0.conv."] = f"encoder.down.{block}.downsample.conv."
    # The LDM decoder numbers its up blocks from the lowest resolution up: reversed.
    for block in range(count):
        ldm_block = count - 1 - block
        for layer in range(per_block + 1):
            mapping[f"decoder.up_blocks.{block}.resnets.{layer}."] = f"decoder.up.{ldm_block}.block.{layer}."
        if block < count - 1:
            mapping[f"decoder.up_blocks.{block}.upsamplers.0.conv."] = f"decoder.up.{ldm_block}.upsample.conv."
    for part in ("encoder", "decoder"):
        mapping[f"{part}.mid_block.resnets.0."] = f"{part}.mid.block_1."
        mapping[f"{part}.mid_block.resnets.1."] = f"{part}.mid.block_2."
        mapping[f"{part}.mid_block.attentions.0."] = f"{part}.mid.attn_1."
    return mapping


def _vae_to_ldm(vae) -> dict[str, torch.Tensor]:
    blocks = _vae_prefix_map(vae.config)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in vae.state_dict().items():
        ldm = None
        for new, old in _VAE_TOP_LEVEL.items():
            if key.startswith(new):
                ldm = old + key[len(new):]
                break
        if ldm is None:
            for new, old in blocks.items():
                if key.startswith(new):
                    rest = key[len(new):]
                    if ".attentions." in new:
                        rest = _rename(rest, _VAE_ATTENTION_PARTS, "VAE attention")
                        # LDM's AttnBlock uses 1x1 convolutions: the converter drops the two
                        # trailing singleton dims (`[:, :, 0, 0]`), so add them back.
                        if rest.endswith(".weight") and tensor.ndim == 2:
                            tensor = tensor[:, :, None, None]
                    elif ".resnets." in new:
                        rest = rest.replace("conv_shortcut.", "nin_shortcut.")
                    ldm = old + rest
                    break
        if ldm is None:
            raise KeyError(f"no LDM name for VAE tensor {key!r}")
        out[VAE_PREFIX + ldm] = tensor
    return out


def _clip_to_ldm(text_encoder) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, tensor in text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel (no `text_model.` level); older versions
        # have it. The LDM layout always has it, and diffusers strips it again when loading.
        if not key.startswith("text_model."):
            key = "text_model." + key
        out[CLIP_PREFIX + key] = tensor
    return out


def ldm_state_dict(pipe) -> dict[str, torch.Tensor]:
    """The pipeline's UNet, VAE and CLIP text encoder weights under original-LDM names."""
    state = {}
    for part in (_unet_to_ldm(pipe.unet), _vae_to_ldm(pipe.vae), _clip_to_ldm(pipe.text_encoder)):
        clash = state.keys() & part.keys()
        if clash:
            raise KeyError(f"LDM names used twice: {sorted(clash)[:5]}")
        state.update(part)
    # safetensors refuses views and shared storage: give every tensor its own contiguous copy.
    return {key: tensor.detach().to("cpu").contiguous().clone() for key, tensor in state.items()}


def save_as_single_file(pipe, path: Path) -> Path:
    """Save an SD-1.5-shaped diffusers pipeline as ONE original-LDM-format .safetensors checkpoint
    (keys like model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.text_model.*),
    the format A1111/civitai checkpoints use."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(ldm_state_dict(pipe), str(path), metadata={"format": "pt"})
    return path


def save_diffusers_config_folder(pipe, folder: Path) -> Path:
    """Save the pipeline's configs WITHOUT weights (model_index.json, scheduler/, tokenizer/, and
    each model subfolder's config.json), i.e. what diffusers' `from_single_file(..., config=folder)` needs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_config(str(folder))  # model_index.json
    pipe.scheduler.save_pretrained(str(folder / "scheduler"))
    pipe.tokenizer.save_pretrained(str(folder / "tokenizer"))
    pipe.unet.save_config(str(folder / "unet"))
    pipe.vae.save_config(str(folder / "vae"))
    pipe.text_encoder.config.save_pretrained(str(folder / "text_encoder"))
    return folder
