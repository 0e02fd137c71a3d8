"""T2I-Adapter units on the tiny models: an adapter steers reproducibly with its weight, several run at
once, files of the controlnets folder (diffusers' layout, TencentARC's original one, a diffusers folder)
are adapters by their layers and listed with A1111's hash, the infotext line restores through PNG Info,
and what diffusers' adapter pipelines cannot run is refused by name before any work."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from support import pixels, png_copies, tiny_request
from studio import GenerationRequest, Studio
from studio.control.folder import a1111_names, legacy_hash
from studio.control.t2i_adapter import BUILTIN, build_tiny_adapter, is_adapter
from studio.errors import InvalidValue
from studio.events import Progress
from studio.metadata import read_png
from studio.pnginfo import recall


def picture(width: int = 96, height: int = 80) -> Image.Image:
    image = Image.new("RGB", (width, height), (90, 90, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 45, 60), fill=(240, 240, 240))
    draw.ellipse((55, 20, 90, 55), fill=(20, 30, 40))
    return image


def unit(model: str = BUILTIN + "sd15", **fields) -> dict:
    return {"image": picture(), "module": "canny", "model": model, **fields}


def image(result) -> np.ndarray:
    return pixels(result.images[0])


def original_layout(state: dict) -> dict:
    """A diffusers-layout adapter's layers as TencentARC's original files name them (one flat list of
    resnet blocks): what A1111's `t2iadapter_*_sd15v2` files hold."""
    per_level = 1 + max(int(k.split(".")[4]) for k in state if ".resnets." in k)
    out = {}
    for key, value in state.items():
        parts = key.split(".")[1:]  # drop "adapter."
        if parts[0] == "body" and parts[2] == "resnets":
            parts = ["body", str(int(parts[1]) * per_level + int(parts[3])), *parts[4:]]
        elif parts[0] == "body":  # in_conv: on the level's first block
            parts = ["body", str(int(parts[1]) * per_level), *parts[2:]]
        out[".".join(parts)] = value
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A controlnets folder as A1111 users have one: the tiny SD 1.5 adapter as a single file in
    diffusers' layout (by a name like lllyasviel's), in TencentARC's original layout (like
    `t2iadapter_canny_sd15v2`), as a diffusers folder; and the same layers built in SD 1.5's full-adapter
    layout, whose features do not meet the tiny UNet."""
    from diffusers import T2IAdapter

    root = tmp_path_factory.mktemp("controlnets")
    adapter = build_tiny_adapter("sd15")
    state = {k: v.contiguous() for k, v in adapter.state_dict().items()}
    save_file(state, str(root / "t2i-adapter_diffusers_tiny.safetensors"))
    save_file(original_layout(state), str(root / "t2iadapter_tiny_sd15v2.safetensors"))
    adapter.save_pretrained(root / "tiny-adapter")
    config = {k: v for k, v in adapter.config.items() if not k.startswith("_")}
    wrong = T2IAdapter(**{**config, "adapter_type": "full_adapter", "downscale_factor": 2})
    save_file(wrong.state_dict(), str(root / "t2iadapter_wrong_layout.safetensors"))
    return root


@pytest.fixture(scope="module")
def studio(folder):
    return Studio(device="cpu", cache_size=2, controlnets_dir=folder)


def test_an_adapter_unit_steers_reproducibly_with_its_weight(studio):
    plain = studio.run(tiny_request(seed=4))
    steered = studio.run(tiny_request(seed=4, controlnets=[unit()]))
    again = studio.run(tiny_request(seed=4, controlnets=[unit()]))
    half = studio.run(tiny_request(seed=4, controlnets=[unit(weight=0.5)]))
    off = studio.run(tiny_request(seed=4, controlnets=[unit(weight=0.0)]))
    assert not np.array_equal(image(steered), image(plain))
    assert np.array_equal(image(steered), image(again))  # the same seed, the same image
    assert not np.array_equal(image(half), image(steered)) and not np.array_equal(image(half), image(plain))
    assert np.array_equal(image(off), image(plain))  # weight 0: no adapter at all
    [(index, used)] = steered.control_maps
    assert index == 0 and used.size == (64, 64)
    progress = [e for e in studio.generate(tiny_request(seed=4, controlnets=[unit()])) if isinstance(e, Progress)]
    assert [p.step for p in progress] == [1, 2, 3, 4]  # the adapter pipeline's old callback, as the engine's


@pytest.mark.parametrize("model, family", [("tiny", "sd15"), ("tiny-xl", "sdxl")])
def test_two_adapters_at_once_and_a_batch(studio, model, family):
    one = studio.run(tiny_request(model=model, seed=2, controlnets=[unit(BUILTIN + family)]))
    two = studio.run(tiny_request(model=model, seed=2, controlnets=[
        unit(BUILTIN + family), unit(BUILTIN + family, module="invert", weight=0.6)]))
    assert not np.array_equal(image(two), image(one))
    batch = studio.run(tiny_request(model=model, seed=2, batch_size=2, controlnets=[
        unit(BUILTIN + family), unit(BUILTIN + family, module="invert", weight=0.6)]))
    plain = studio.run(tiny_request(model=model, seed=2, batch_size=2))
    assert len(batch.images) == 2  # each image of the batch steered (its map given once an image)
    assert np.abs(pixels(batch.images[0]).astype(int) - image(two)).max() <= 2  # a batch's own rounding
    assert all(not np.array_equal(pixels(a), pixels(b)) for a, b in zip(batch.images, plain.images))


def test_sdxl_adapters_can_stop_early_and_sd15_ones_cannot(studio):
    full = studio.run(tiny_request(model="tiny-xl", seed=3, controlnets=[unit(BUILTIN + "sdxl")]))
    early = studio.run(tiny_request(model="tiny-xl", seed=3, controlnets=[unit(BUILTIN + "sdxl", guidance_end=0.5)]))
    plain = studio.run(tiny_request(model="tiny-xl", seed=3))
    assert len({image(r).tobytes() for r in (full, early, plain)}) == 3
    with pytest.raises(InvalidValue, match=r"controlnets\[1\].guidance_end: 0.8 .*unit 0's \(0.5\)"):
        studio.run(tiny_request(model="tiny-xl", controlnets=[unit(BUILTIN + "sdxl", guidance_end=0.5),
                                                              unit(BUILTIN + "sdxl", guidance_end=0.8)]))
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].guidance_end: 0.5 .*1 with a T2I-Adapter on SD 1.x"):
        studio.run(tiny_request(controlnets=[unit(guidance_end=0.5)]))


def test_the_folders_files_are_adapters_by_their_layers_and_listed_with_a1111s_hash(studio, folder):
    names = a1111_names(folder)
    for stem in ("t2i-adapter_diffusers_tiny", "t2iadapter_tiny_sd15v2"):
        file = folder / f"{stem}.safetensors"
        assert f"{stem} [{legacy_hash(file)}]" in names and is_adapter(str(file))
    assert "tiny-adapter" in names and is_adapter(str(folder / "tiny-adapter"))
    assert not is_adapter("builtin:controlnet/sd15") and not is_adapter("someone/missing-adapter")  # offline
    builtin = studio.run(tiny_request(seed=5, controlnets=[unit()]))
    for name in ("t2i-adapter_diffusers_tiny", "t2iadapter_tiny_sd15v2 [0123abcd]", "tiny-adapter"):
        by_name = studio.run(tiny_request(seed=5, controlnets=[unit(name)]))
        assert np.array_equal(image(by_name), image(builtin)), name  # the same layers, whatever the layout


def test_the_infotext_line_restores_the_unit_through_png_info(studio, folder, tmp_path):
    name = f"t2iadapter_tiny_sd15v2 [{legacy_hash(folder / 't2iadapter_tiny_sd15v2.safetensors')}]"
    result = studio.run(tiny_request(seed=-1, controlnets=[unit(name, weight=0.7)]))
    assert (f'ControlNet 0: "Module: canny, Model: {name}, Weight: 0.7, Resize Mode: Crop and Resize, Processor '
            'Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: 1.0, Pixel '
            'Perfect: False, Control Mode: Balanced"') in result.infotexts[0]
    for path in png_copies(result, tmp_path):
        fields = recall(read_png(path)).fields
        fields["controlnets"] = [dataclasses.replace(u, image=picture()) for u in fields["controlnets"]]
        again = studio.run(GenerationRequest.from_settings(fields))
        assert again.request == result.request
        assert np.array_equal(image(again), image(result)), path.name


def test_image_prompts_join_sdxl_adapters_and_sd15s_adapter_pipeline_says_it_takes_none(studio):
    prompt = {"image": picture(64, 64), "model": "builtin:ip-adapter/sdxl"}
    alone = studio.run(tiny_request(model="tiny-xl", seed=2, controlnets=[unit(BUILTIN + "sdxl")]))
    both = studio.run(tiny_request(model="tiny-xl", seed=2, controlnets=[unit(BUILTIN + "sdxl")],
                                   image_prompts=[prompt]))
    assert not np.array_equal(image(both), image(alone))
    with pytest.raises(InvalidValue, match=r"image_prompts: .*none for txt2img on tiny .*SDAdapterPipeline takes no"):
        studio.run(tiny_request(controlnets=[unit()], image_prompts=[{**prompt, "model": "builtin:ip-adapter/sd15"}]))


def test_a_size_the_adapter_cannot_unshuffle_is_refused_by_name():
    from types import SimpleNamespace

    from studio.control.adapter_pipes import check_size

    check_size(SimpleNamespace(downscale_factor=16), (1024, 768), "xl-canny", "controlnets[0].model")
    with pytest.raises(InvalidValue, match=r"height: 1000 .*a multiple of 16 with the T2I-Adapter xl-canny"):
        check_size(SimpleNamespace(downscale_factor=16), (1024, 1000), "xl-canny", "controlnets[0].model")


def test_a_pickled_adapter_is_read_only_when_pickles_are_allowed(tmp_path):
    """TencentARC's own files are `.pth` pickles: read (weights only) with --allow-pickle, as checkpoints."""
    import torch

    from studio.control.models import ControlNets
    from studio.control.t2i_adapter import unet_layout
    from studio.devices import pick_device
    from studio.errors import ModelLoadError
    from studio.families import family

    adapter = build_tiny_adapter("sd15")
    pth = tmp_path / "t2iadapter_tiny_sd15v2.pth"
    torch.save(original_layout(adapter.state_dict()), pth)
    assert is_adapter(str(pth), allow_pickle=True) and not is_adapter(str(pth))
    base = family("sd15").tiny()
    layout = unet_layout(base.unet, base.vae_scale_factor)  # where the tiny UNet takes the features
    loaded = ControlNets(pick_device("cpu", "fp32"), allow_pickle=True).adapter(str(pth), layout)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), adapter.state_dict().values()))
    with pytest.raises(ModelLoadError, match="t2iadapter_tiny_sd15v2.pth is a pickle file.*--allow-pickle"):
        ControlNets(pick_device("cpu", "fp32")).adapter(str(pth), layout)


# Each refusal names its field before any work: a unit whose work would fail (a ControlNet that is not on
# this machine, a preprocessor whose model is not) shows that nothing was loaded or preprocessed first.
OFFLINE_NET = "someone/missing-controlnet"
NEEDS_MODEL = "depth_anything_v2"


@pytest.mark.parametrize("fields, message", [
    (dict(controlnets=[unit(), unit(OFFLINE_NET)]),
     r"controlnets\[1\].model: 'someone/missing-controlnet'.*a T2I-Adapter, as unit 0's is \(this one is a "
     "ControlNet\\): diffusers has no pipeline that runs ControlNets and T2I-Adapters together"),
    (dict(controlnets=[unit("builtin:controlnet/sd15"), unit()]),
     r"controlnets\[1\].model: 'builtin:t2i-adapter/sd15'.*a ControlNet, as unit 0's is \(this one is a T2I-Adapter"),
    (dict(task="img2img", init_image=picture(64, 64), controlnets=[unit(module=NEEDS_MODEL)]),
     r"controlnets\[0\].model: 'builtin:t2i-adapter/sd15'.*a ControlNet for img2img: T2I-Adapters steer text to "
     "image only"),
    (dict(task="inpaint", init_image=picture(64, 64), mask=Image.new("L", (64, 64), 255), controlnets=[unit()]),
     r"controlnets\[0\].model: .*a ControlNet for inpaint"),
    (dict(hires=True, hires_steps=2, controlnets=[unit(module=NEEDS_MODEL)]),
     r"controlnets\[0\].model: .*a ControlNet for the hires pass \(image to image\)"),
    (dict(controlnets=[unit(module=NEEDS_MODEL, guidance_start=0.3)]),
     r"controlnets\[0\].guidance_start: 0.3 .*0 with a T2I-Adapter"),
    (dict(controlnets=[unit(module=NEEDS_MODEL, control_mode="My prompt is more important")]),
     r"controlnets\[0\].control_mode: .*Balanced with a T2I-Adapter"),
    (dict(model="tiny-flux", sampler="Euler", controlnets=[unit(module=NEEDS_MODEL)]),
     r"controlnets\[0\].model: .*a ControlNet on tiny-flux: T2I-Adapters run on SD 1.x and SDXL models only"),
    (dict(controlnets=[unit("t2iadapter_wrong_layout")]),
     r"controlnets\[0\].model: 't2iadapter_wrong_layout'.*a T2I-Adapter made for tiny's family \(its UNet takes "
     r"32 channels at 1/4, 64 channels at 1/4; this adapter makes 32 channels at 1/2, 64 channels at 1/4\)"),
])
def test_what_adapter_pipelines_cannot_run_is_refused_by_name_before_any_work(studio, fields, message):
    with pytest.raises(InvalidValue, match=message):
        studio.run(tiny_request(**fields))
