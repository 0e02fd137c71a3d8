"""T2I-Adapter files without running one: where each kind's features meet SD 1.5's and SDXL's UNets, an
adapter told from a ControlNet by its layer names, a single file's config read from its layers' shapes
(diffusers' layout and TencentARC's original one), and A1111's adapter names as TencentARC's
repositories. Pure: shapes stand for tensors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from studio.control import t2i_adapter as t2i
from studio.control.folder import A1111_ADAPTERS, family_by_name, resolve
from studio.control.known import KNOWN_MODELS


def unet(blocks: list[tuple[str, int]]) -> SimpleNamespace:
    """A UNet as unet_layout reads it: its down blocks (with or without cross-attention; all but the
    last downsample) and their widths."""
    down = [SimpleNamespace(has_cross_attention=kind == "attn", downsamplers=None if i == len(blocks) - 1 else [1])
            for i, (kind, _) in enumerate(blocks)]
    return SimpleNamespace(down_blocks=down, config=SimpleNamespace(block_out_channels=[c for _, c in blocks]))


SD15 = t2i.unet_layout(unet([("attn", 320), ("attn", 640), ("attn", 1280), ("plain", 1280)]), 8)
SDXL = t2i.unet_layout(unet([("plain", 320), ("attn", 640), ("attn", 1280)]), 8)
# TencentARC's configs: SD 1.5's full and light adapters, SDXL's.
FULL = dict(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2, downscale_factor=8,
            adapter_type="full_adapter")
LIGHT = dict(in_channels=3, channels=[320, 640, 1280], num_res_blocks=4, downscale_factor=8,
             adapter_type="light_adapter")
XL = dict(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2, downscale_factor=16,
          adapter_type="full_adapter_xl")


def test_each_kind_of_adapter_meets_the_unet_it_is_made_for():
    assert SD15 == (((320, 8), (640, 16), (1280, 32), (1280, 64)), (1280, 64))
    assert SDXL == (((320, 16), (640, 16), (1280, 32)), (1280, 32))  # the last one after the middle block
    assert t2i.fits(t2i.adapter_layout(FULL), SD15) and t2i.fits(t2i.adapter_layout(LIGHT), SD15)
    assert t2i.fits(t2i.adapter_layout(XL), SDXL)
    assert not t2i.fits(t2i.adapter_layout(FULL), SDXL) and not t2i.fits(t2i.adapter_layout(XL), SD15)
    assert t2i.describe(SDXL[0]) == "320 channels at 1/16, 640 channels at 1/16, 1280 channels at 1/32"


def shapes(config: dict) -> dict[str, np.ndarray]:
    """The layers of a diffusers-layout full adapter of `config` (zeros of their shapes)."""
    channels, per = config["channels"], config["num_res_blocks"]
    width = config["in_channels"] * config["downscale_factor"] ** 2
    state = {"adapter.conv_in.weight": np.zeros((channels[0], width, 3, 3))}
    for i, c in enumerate(channels):
        if i and channels[i - 1] != c:
            state[f"adapter.body.{i}.in_conv.weight"] = np.zeros((c, channels[i - 1], 1, 1))
        for j in range(per):
            state[f"adapter.body.{i}.resnets.{j}.block1.weight"] = np.zeros((c, c, 3, 3))
            state[f"adapter.body.{i}.resnets.{j}.block2.weight"] = np.zeros((c, c, 1, 1))
    return state


@pytest.mark.parametrize("config", [FULL, XL, dict(FULL, in_channels=1)])  # sketch adapters read one channel
def test_a_single_files_config_is_read_from_its_layers(config):
    options = t2i.configs(shapes(config))
    assert [o["adapter_type"] for o in options] == ["full_adapter", "full_adapter_xl"]  # the UNet picks one
    assert all({**o, "adapter_type": config["adapter_type"]} == config for o in options)


def test_tencentarcs_original_layout_becomes_diffusers():
    original = {"conv_in.weight": np.zeros((320, 192, 3, 3)), "body.2.in_conv.weight": np.zeros((640, 320, 1, 1)),
                **{f"body.{k}.block{n}.weight": np.zeros(1) for k in range(8) for n in (1, 2)}}
    assert t2i.keys_kind(original) == "original"
    converted = t2i._original_to_diffusers(original)
    assert t2i.keys_kind(converted) == "diffusers"
    assert {"adapter.conv_in.weight", "adapter.body.1.in_conv.weight", "adapter.body.3.resnets.1.block2.weight",
            "adapter.body.0.resnets.0.block1.weight"} <= set(converted) and len(converted) == len(original)
    with pytest.raises(ValueError, match="skip or downsampling convolutions"):
        t2i._original_to_diffusers({**original, "body.2.skep.weight": np.zeros(1)})
    light = {"body.0.in_conv.weight": 0, "body.0.body.0.block1.weight": 0, "body.0.out_conv.weight": 0}
    assert t2i.keys_kind(light) == "light"
    assert set(t2i._light_to_diffusers(light)) == {"adapter.body.0.in_conv.weight",
                                                   "adapter.body.0.resnets.0.block1.weight",
                                                   "adapter.body.0.out_conv.weight"}


def test_controlnets_and_ip_adapters_are_not_adapters_by_their_layers():
    assert t2i.keys_kind(["controlnet_cond_embedding.conv_in.weight", "conv_in.weight"]) is None  # diffusers'
    assert t2i.keys_kind(["control_model.input_hint_block.0.weight", "control_model.input_blocks.0.0.weight"]) is None
    assert t2i.keys_kind(["image_proj.proj.weight", "ip_adapter.1.to_k_ip.weight"]) is None
    assert t2i.is_adapter("builtin:t2i-adapter/sdxl") and not t2i.is_adapter("builtin:controlnet/sd15")


def test_a1111s_adapter_names_are_tencentarcs_repositories_and_a_folders_file_wins(tmp_path):
    assert resolve("t2iadapter_canny_sd15v2 [e3b0c442]", tmp_path) == "TencentARC/t2iadapter_canny_sd15v2"
    assert resolve("t2i-adapter_diffusers_xl_depth_midas", None) == "TencentARC/t2i-adapter-depth-midas-sdxl-1.0"
    (tmp_path / "t2iadapter_canny_sd15v2.safetensors").write_bytes(b"")
    file = tmp_path / "t2iadapter_canny_sd15v2.safetensors"
    assert resolve("t2iadapter_canny_sd15v2 [e3b0c442]", tmp_path) == str(file)
    assert all(repo.startswith("TencentARC/") for repo in A1111_ADAPTERS.values())
    assert family_by_name("t2iadapter_openpose_sd14v1") == "sd15"
    assert family_by_name("t2i-adapter_diffusers_xl_canny") == "sdxl"
    assert KNOWN_MODELS["TencentARC/t2iadapter_canny_sd15v2"] == "sd15"
    assert KNOWN_MODELS["TencentARC/t2i-adapter-canny-sdxl-1.0"] == "sdxl"
