"""The LDM single-file exporter round-trips through diffusers' own `from_single_file`, offline."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from support.ldm_export import (
    CLIP_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    _unet_to_ldm,
    _vae_to_ldm,
    save_as_single_file,
    save_diffusers_config_folder,
)
from studio.tiny import build_tiny_sd15

COMPONENTS = ("unet", "vae", "text_encoder")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    from diffusers import StableDiffusionPipeline

    folder = tmp_path_factory.mktemp("ldm-export")
    original = build_tiny_sd15()
    checkpoint = save_as_single_file(original, folder / "tiny-sd15.safetensors")
    configs = save_diffusers_config_folder(original, folder / "configs")

    records = _Records()
    diffusers_log = logging.getLogger("diffusers")
    diffusers_log.addHandler(records)
    try:
        loaded = StableDiffusionPipeline.from_single_file(
            str(checkpoint),
            config=str(configs),
            local_files_only=True,
            safety_checker=None,
            requires_safety_checker=False,
        )
    finally:
        diffusers_log.removeHandler(records)
    for pipe in (original, loaded):
        pipe.set_progress_bar_config(disable=True)
    return original, loaded, checkpoint, configs, records.messages


def test_checkpoint_has_the_original_ldm_layout(round_trip):
    from safetensors.torch import load_file

    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from studio.checkpoints import checkpoint_family

    _, _, checkpoint, configs, _ = round_trip
    state = load_file(str(checkpoint))
    keys = set(state)
    shapes = {key: tuple(tensor.shape) for key, tensor in state.items()}
    assert all(k.startswith((UNET_PREFIX, VAE_PREFIX, CLIP_PREFIX + "text_model.")) for k in keys)
    for key in (
        UNET_PREFIX + "input_blocks.0.0.weight",
        UNET_PREFIX + "input_blocks.3.0.op.weight",  # downsampler of down block 0
        UNET_PREFIX + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight",
        UNET_PREFIX + "middle_block.1.proj_in.weight",
        UNET_PREFIX + "output_blocks.2.2.conv.weight",  # upsampler after up block 0's attention
        UNET_PREFIX + "output_blocks.3.0.skip_connection.weight",
        UNET_PREFIX + "out.2.weight",
        VAE_PREFIX + "decoder.up.1.upsample.conv.weight",  # LDM numbers decoder blocks reversed
        VAE_PREFIX + "encoder.down.1.block.0.nin_shortcut.weight",
        CLIP_PREFIX + "text_model.embeddings.position_embedding.weight",
    ):
        assert key in keys, key
    # LDM's VAE attention is made of 1x1 convolutions.
    assert shapes[VAE_PREFIX + "decoder.mid.attn_1.q.weight"] == (64, 64, 1, 1)
    assert shapes[VAE_PREFIX + "encoder.mid.attn_1.proj_out.weight"] == (64, 64, 1, 1)
    # Neither diffusers nor the studio needs anything else to classify it as SD 1.x.
    assert infer_diffusers_model_type(state) == "v1"
    assert checkpoint_family(str(checkpoint)) == "sd15"
    assert not list(configs.rglob("*.safetensors")) and not list(configs.rglob("*.bin"))


def test_round_trip_keeps_every_weight(round_trip):
    original, loaded, _, _, warnings = round_trip
    assert not [m for m in warnings if "not used" in m], warnings
    for name in COMPONENTS:
        before = getattr(original, name).state_dict()
        after = getattr(loaded, name).state_dict()
        assert before.keys() == after.keys(), name
        for key, tensor in before.items():
            assert after[key].dtype == tensor.dtype and after[key].device.type == "cpu", (name, key)
            assert torch.equal(after[key], tensor), (name, key)
    assert type(loaded.scheduler) is type(original.scheduler)
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.scheduler.config) == public(original.scheduler.config)
    assert loaded.tokenizer("a red cube").input_ids == original.tokenizer("a red cube").input_ids
    assert loaded.safety_checker is None


def test_round_trip_generates_the_same_image(round_trip):
    original, loaded, _, _, _ = round_trip

    def generate(pipe):
        return pipe(
            "a red cube",
            num_inference_steps=3,
            height=64,
            width=64,
            generator=torch.Generator("cpu").manual_seed(7),
            output_type="np",
        ).images

    expected, actual = generate(original), generate(loaded)
    assert expected.shape == (1, 64, 64, 3) and np.isfinite(expected).all()
    assert np.array_equal(expected, actual)


def test_mapping_covers_the_full_size_sd15_layout():
    """The tiny model misses some LDM slots; the mapping is derived from the configs, so check it
    against diffusers' converters on full SD 1.5 shapes too (empty weights: no memory, no time)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        CHECKPOINT_KEY_NAMES,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    with init_empty_weights():
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8)  # SD 1.5's config
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
        )
    unet_ldm = _unet_to_ldm(unet)
    assert CHECKPOINT_KEY_NAMES["v1"] in unet_ldm  # the key diffusers recognises SD 1.x by
    unet_back = convert_ldm_unet_checkpoint(unet_ldm, dict(unet.config))
    assert unet_back.keys() == unet.state_dict().keys()
    vae_back = convert_ldm_vae_checkpoint(_vae_to_ldm(vae), dict(vae.config))
    assert vae_back.keys() == vae.state_dict().keys()
    for key, tensor in vae.state_dict().items():
        assert vae_back[key].shape == tensor.shape, key
