"""Image prompts (IP-Adapter): reference pictures steer the image, each with its own weight; the
adapters load once into the model's own UNet and leave it exactly as it was; their units are in the
infotext as A1111's ControlNet extension writes IP-Adapter units, and the PNG regenerates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, PngImagePlugin
from safetensors.torch import save_file

from support import pixels, png_copies, tiny_request
from studio import GenerationRequest
from studio.control.ip_adapter import BUILTIN, build_tiny_adapter, read_adapter, save_adapter
from studio.engine.paths import check_paths
from studio.errors import InvalidValue
from studio.metadata import read_png
from studio.pnginfo import recall


def reference(colour=(200, 40, 30), size=(80, 60)) -> Image.Image:
    image = Image.new("RGB", size, (20, 20, 20))
    ImageDraw.Draw(image).ellipse((10, 10, size[0] - 10, size[1] - 10), fill=colour)
    return image


def prompt(family: str = "sd15", **fields) -> dict:
    return {"image": reference(), "model": BUILTIN + family, **fields}


def same(a, b) -> bool:
    return np.array_equal(pixels(a.images[0]), pixels(b.images[0]))


def test_an_image_prompt_steers_and_taking_it_out_gives_the_plain_image_bit_for_bit(studio):
    unet = studio.load("tiny").pipe.unet
    processors = dict(unet.attn_processors)
    plain = studio.run(tiny_request(seed=3))
    steered = studio.run(tiny_request(seed=3, image_prompts=[prompt()]))
    again = studio.run(tiny_request(seed=3, image_prompts=[prompt()]))
    after = studio.run(tiny_request(seed=3))
    silent = studio.run(tiny_request(seed=3, image_prompts=[prompt(weight=0.0)]))
    assert same(steered, again) and not same(steered, plain)
    assert same(after, plain) and same(silent, plain)  # unloaded: exactly the image without it
    # The UNet has its own processors back (the very objects) and no image projection.
    assert all(unet.attn_processors[name] is p for name, p in processors.items())
    assert unet.encoder_hid_proj is None and unet.config.encoder_hid_dim_type is None


def test_each_picture_has_its_own_weight_and_adapters_load_once(studio):
    loaded = studio.load("tiny")
    red = studio.run(tiny_request(seed=5, image_prompts=[prompt()]))
    half = studio.run(tiny_request(seed=5, image_prompts=[prompt(weight=0.5)]))
    both = studio.run(tiny_request(seed=5, image_prompts=[prompt(), prompt(image=reference((30, 60, 220)))]))
    weighted = studio.run(tiny_request(seed=5, image_prompts=[
        prompt(), prompt(image=reference((30, 60, 220)), weight=0.3)]))
    assert len({pixels(r.images[0]).tobytes() for r in (red, half, both, weighted)}) == 4
    loads, encoders = loaded.ip_adapters.loads, studio.image_encoders._cache.loads
    studio.run(tiny_request(seed=6, image_prompts=[prompt(), prompt(weight=1.5)]))
    assert loaded.ip_adapters.loads == loads and studio.image_encoders._cache.loads == encoders  # nothing loaded again
    assert studio.load("tiny").pipe.unet is loaded.pipe.unet


@pytest.mark.slow
@pytest.mark.parametrize("fields", [
    dict(batch_size=2), dict(cfg_scale=1.0), dict(task="img2img", init_image=reference(size=(64, 64)), batch_size=2),
    dict(task="inpaint", init_image=reference(size=(64, 64)), mask=Image.new("L", (64, 64), 255)),
    dict(hires=True, hires_scale=1.5, hires_steps=2),
    dict(controlnets=[{"image": reference(), "module": "canny", "model": "builtin:controlnet/sd15"}])])
def test_image_prompts_steer_every_task_and_batch(studio, fields):
    plain = studio.run(tiny_request(seed=7, **fields))
    steered = studio.run(tiny_request(seed=7, image_prompts=[prompt()], **fields))
    assert [i.size for i in steered.images] == [i.size for i in plain.images]
    assert all(not np.array_equal(pixels(a), pixels(b)) for a, b in zip(steered.images, plain.images))


@pytest.mark.slow
def test_sdxl_and_an_adapter_of_another_family_is_refused_by_name(studio):
    plain = studio.run(tiny_request(model="tiny-xl", seed=2))
    steered = studio.run(tiny_request(model="tiny-xl", seed=2, image_prompts=[prompt("sdxl")]))
    assert not same(steered, plain)
    with pytest.raises(InvalidValue, match=r"image_prompts\[0\].model: 'builtin:ip-adapter/sd15'.*made for tiny-xl"):
        studio.run(tiny_request(model="tiny-xl", image_prompts=[prompt()]))
    with pytest.raises(InvalidValue, match=r"image_prompts: 'tiny-sd3'.*IP-Adapter support"):
        studio.run(tiny_request(model="tiny-sd3", image_prompts=[prompt()]))
    assert same(studio.run(tiny_request(model="tiny-xl", seed=2)), plain)  # a refusal changes nothing


@pytest.mark.slow
def test_adapter_files_load_as_the_builtin_does(studio, tmp_path):
    state = build_tiny_adapter("sd15")
    save_adapter(state, tmp_path / "tiny-ip.safetensors")
    torch.save(state, tmp_path / "tiny-ip.bin")
    builtin = studio.run(tiny_request(seed=8, image_prompts=[prompt()]))
    for name in ("tiny-ip.safetensors", "tiny-ip.bin"):
        from_file = studio.run(tiny_request(seed=8, image_prompts=[prompt(model=str(tmp_path / name))]))
        assert same(from_file, builtin), name
    (tmp_path / "notes.txt").write_text("not an adapter")
    with pytest.raises(InvalidValue, match=r"field: .*notes.txt.*an IP-Adapter"):
        read_adapter(str(tmp_path / "notes.txt"), "field")
    save_file({"unrelated.weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(InvalidValue, match=r"image_prompts\[0\].model.*image_proj and ip_adapter"):
        studio.run(tiny_request(image_prompts=[prompt(model=str(tmp_path / "other.safetensors"))]))


@pytest.mark.parametrize("prompts, message", [
    ([prompt(image=None)], r"image_prompts\[0\].image.*add it again"),
    ([prompt(model="")], r"image_prompts\[0\].model: ''.*ip-adapter_sd15"),
    ([prompt(model="no-such-adapter")], r"image_prompts\[0\].model: 'no-such-adapter'.*ip-adapter_sd15"),
    ([prompt(weight=2.5)], r"image_prompts\[0\].weight: 2.5"),
    ([prompt(weight="lots")], r"image_prompts\[0\].weight: 'lots'"),
    ([prompt(scale=1)], r"image_prompts\[0\].scale.*image, model, weight"),
    ([prompt()] * 5, r"image_prompts: '5 image prompts'.*at most 4"),
    ("a picture", r"image_prompts: 'str'.*list"),
])
def test_bad_image_prompts_are_refused_with_the_field_named(studio, prompts, message):
    with pytest.raises(InvalidValue, match=message):
        studio.run(tiny_request(image_prompts=prompts))


@pytest.mark.slow
def test_image_prompts_are_written_after_the_units_as_a1111_writes_them_and_the_png_regenerates(studio, tmp_path):
    unit = {"image": reference(), "module": "canny", "model": "builtin:controlnet/sd15"}
    result = studio.run(tiny_request(seed=-1, controlnets=[unit], image_prompts=[prompt(weight=0.75), prompt()]))
    text = result.infotexts[0]
    assert 'ControlNet 0: "Module: canny, Model: builtin:controlnet/sd15' in text
    assert ('ControlNet 1: "Module: ip-adapter-auto, Model: builtin:ip-adapter/sd15, Weight: 0.75, Resize Mode: '
            'Crop and Resize, Processor Res: 512, Threshold A: -1.0, Threshold B: -1.0, Guidance Start: 0.0, '
            'Guidance End: 1.0, Pixel Perfect: False, Control Mode: Balanced"') in text
    assert 'ControlNet 2: "Module: ip-adapter-auto, Model: builtin:ip-adapter/sd15, Weight: 1.0' in text
    for path in png_copies(result, tmp_path):
        fields = recall(read_png(path)).fields
        assert [p.weight for p in fields["image_prompts"]] == [0.75, 1.0] and len(fields["controlnets"]) == 1
        with pytest.raises(InvalidValue, match=r"controlnets\[0\].image|image_prompts\[0\].image"):
            studio.run(GenerationRequest.from_settings(fields))  # pictures are never in PNGs
        fields["controlnets"] = [dataclasses.replace(u, image=reference()) for u in fields["controlnets"]]
        fields["image_prompts"] = [dataclasses.replace(p, image=reference()) for p in fields["image_prompts"]]
        again = studio.run(GenerationRequest.from_settings(fields))
        assert again.request == result.request and same(again, result), path.name


def test_an_a1111_ip_adapter_unit_reads_back_as_an_image_prompt(tmp_path):
    text = ('a face\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: sd15, '
            'ControlNet 0: "Module: ip-adapter_clip_h, Model: ip-adapter-plus-face_sd15 [7f7a633a], Weight: 0.35, '
            'Resize Mode: Crop and Resize, Low Vram: False, Processor Res: 512, Threshold A: 0.5, Threshold B: 0.5, '
            'Guidance Start: 0.0, Guidance End: 1.0, Pixel Perfect: False, Control Mode: Balanced", '
            'ControlNet 1: "Module: canny, Model: control_v11p_sd15_canny, Weight: 1.0"')
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", text)
    reference().save(tmp_path / "a1111.png", pnginfo=chunks)
    fields = recall(read_png(tmp_path / "a1111.png")).fields
    assert [(p.model, p.weight) for p in fields["image_prompts"]] == [("ip-adapter-plus-face_sd15", 0.35)]
    assert [u.module for u in fields["controlnets"]] == ["canny"]


def test_a_shared_studio_opens_no_controlnet_or_adapter_outside_its_folders(tmp_path):
    roots = (tmp_path.resolve(),)
    for name, model in (("controlnets", "/etc/passwd"), ("image_prompts", "../elsewhere/ip.bin")):
        request = tiny_request(**{name: [{"image": reference(), "model": model}]})
        with pytest.raises(InvalidValue, match=rf"{name}\[0\].model.*it is shared"):
            check_paths(request, (), roots, None)
    fine = tiny_request(controlnets=[{"image": reference(), "model": "lllyasviel/control_v11p_sd15_canny"}],
                        image_prompts=[prompt(), prompt(model="ip-adapter_sd15")])
    check_paths(fine, (), roots, None)


FLUX = dict(model="tiny-flux", sampler="Euler", cfg_scale=3.5)


@pytest.mark.slow
def test_flux_image_prompts_steer_each_weighted_and_leave_the_transformer_as_it_was(studio):
    transformer = studio.load("tiny-flux").pipe.transformer
    processors = dict(transformer.attn_processors)
    plain = studio.run(tiny_request(seed=3, **FLUX))
    steered = studio.run(tiny_request(seed=3, image_prompts=[prompt("flux")], **FLUX))
    weighted = studio.run(tiny_request(seed=3, image_prompts=[
        prompt("flux"), prompt("flux", image=reference((30, 60, 220)), weight=0.4)], **FLUX))
    true_cfg = studio.run(tiny_request(seed=3, image_prompts=[prompt("flux")], negative_prompt="fog",
                                       true_cfg_scale=2.0, **FLUX))
    assert len({pixels(r.images[0]).tobytes() for r in (plain, steered, weighted, true_cfg)}) == 4
    assert same(studio.run(tiny_request(seed=3, **FLUX)), plain)
    assert all(transformer.attn_processors[name] is p for name, p in processors.items())
    assert len(studio.run(tiny_request(seed=3, batch_size=2, image_prompts=[prompt("flux")], **FLUX)).images) == 2
    assert 'Model: builtin:ip-adapter/flux, Weight: 0.4' in weighted.infotexts[0]


@pytest.mark.slow
@pytest.mark.parametrize("fields", [
    dict(task="img2img", init_image=reference(size=(64, 64)), denoising_strength=0.6),
    dict(hires=True, hires_scale=1.5, hires_steps=2),
    dict(controlnets=[{"image": reference(), "module": "canny", "model": "builtin:controlnet/flux"}])])
def test_flux_image_prompts_in_every_task_and_with_controlnet(studio, fields):
    plain = studio.run(tiny_request(seed=4, **FLUX, **fields))
    steered = studio.run(tiny_request(seed=4, image_prompts=[prompt("flux")], **FLUX, **fields))
    assert not same(steered, plain)


def test_flux_controlnet_image_to_image_takes_no_image_prompts_and_says_so_first(studio):
    unit = {"image": reference(), "module": "canny", "model": "builtin:controlnet/flux"}
    for fields in (dict(task="img2img", init_image=reference(size=(64, 64))), dict(hires=True, hires_steps=2)):
        with pytest.raises(InvalidValue, match=r"image_prompts.*none for img2img on tiny-flux.*"
                                               r"FluxControlNetImg2ImgPipeline takes no image prompts"):
            studio.run(tiny_request(image_prompts=[prompt("flux")], controlnets=[unit], **FLUX, **fields))
    with pytest.raises(InvalidValue, match=r"image_prompts\[0\].model: 'builtin:ip-adapter/sd15'.*made for tiny-flux"):
        studio.run(tiny_request(image_prompts=[prompt()], **FLUX))


def test_an_xlabs_flux_adapter_file_loads_as_the_builtin_does(studio, tmp_path):
    """XLabs' layout: `ip_adapter_proj_model.*` and `double_blocks.N.processor.ip_adapter_double_stream_*`."""
    state = build_tiny_adapter("flux")
    xlabs = {f"ip_adapter_proj_model.{k}": v for k, v in state["image_proj"].items()}
    for key, tensor in state["ip_adapter"].items():
        block, layer, part = key.split(".")
        name = {"to_k_ip": "ip_adapter_double_stream_k_proj", "to_v_ip": "ip_adapter_double_stream_v_proj"}[layer]
        xlabs[f"double_blocks.{block}.processor.{name}.{part}"] = tensor
    save_file(xlabs, tmp_path / "ip_adapter.safetensors")
    builtin = studio.run(tiny_request(seed=8, image_prompts=[prompt("flux")], **FLUX))
    from_file = studio.run(tiny_request(seed=8, image_prompts=[prompt(model=str(tmp_path / "ip_adapter.safetensors"))],
                                        **FLUX))
    assert same(from_file, builtin)


@pytest.mark.slow
def test_the_controlnets_folder_names_controlnets_and_adapters_as_a1111(tmp_path):
    """Files and diffusers folders of --controlnets-dir by name (A1111's `[hash]` dropped), A1111's
    ControlNet 1.1 names as lllyasviel's repositories; both allowed on a shared studio."""
    from studio import Studio
    from studio.control.folder import resolve
    from studio.control.models import build_tiny_controlnet

    folder = tmp_path / "controlnets"
    folder.mkdir()
    build_tiny_controlnet("sd15").save_pretrained(folder / "my-canny")
    save_adapter(build_tiny_adapter("sd15"), folder / "my-ip.safetensors")
    assert resolve("my-canny [d14c016b]", folder) == str(folder / "my-canny")
    assert resolve("control_v11p_sd15_canny [d14c016b]", folder) == "lllyasviel/control_v11p_sd15_canny"
    assert resolve("someone/net", folder) == "someone/net" and resolve("my-ip", None) == "my-ip"
    shared = Studio(device="cpu", cache_size=1, controlnets_dir=folder, allowed_roots=[tmp_path / "models"])
    unit = {"image": reference(), "module": "canny"}
    by_name = shared.run(tiny_request(seed=5, controlnets=[{**unit, "model": "my-canny [d14c016b]"}],
                                      image_prompts=[prompt(model="my-ip")]))
    assert 'Model: my-canny [d14c016b], Weight: 1.0' in by_name.infotexts[0]  # as given: it regenerates
    builtin = shared.run(tiny_request(seed=5, controlnets=[{**unit, "model": "builtin:controlnet/sd15"}],
                                      image_prompts=[prompt()]))
    assert same(by_name, builtin)
    check_paths(tiny_request(controlnets=[{**unit, "model": "control_v11p_sd15_canny [d14c016b]"}]), (),
                shared.config.allowed_roots, None, folder)
