"""ControlNet preprocessors on a real picture: edges where the picture has them, maps at the
generation size, the numbers checked, the model-based ones saying what they need."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from studio.control import PREPROCESSORS, preprocess
from studio.control.pipes import in_mode
from studio.control.preprocessors import canny_edges, pixel_perfect
from studio.control.units import CONTROL_MODES
from studio.errors import InvalidValue, ModelUnavailable, UnknownName


def picture(width: int = 160, height: int = 120) -> Image.Image:
    """A grey ground, a white rectangle, a dark disc and a soft gradient band: hard and soft edges."""
    image = Image.new("RGB", (width, height), (90, 90, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 70, 90), fill=(240, 240, 240))
    draw.ellipse((95, 30, 145, 80), fill=(20, 30, 40))
    for x in range(width):
        draw.line((x, 100, x, 119), fill=(x * 255 // width,) * 3)
    return image


def test_canny_finds_the_rectangle_and_disc_edges_and_nothing_in_flat_regions():
    edges = canny_edges(np.asarray(picture().convert("L"), dtype=np.float32), 100, 200)
    assert edges[20:91, 19:22].any() and edges[20:91, 69:72].any()  # the rectangle's sides
    assert edges[29:32, 110:130].any()  # the disc's top
    assert not edges[40:70, 30:60].any()  # inside the rectangle: flat
    assert not edges[2:15, 2:150].any()  # the ground: flat
    assert not edges[104:116, 10:150].any()  # the gentle gradient is below the thresholds


def test_canny_thresholds_change_what_counts_as_an_edge():
    grey = np.asarray(picture().convert("L"), dtype=np.float32)
    assert canny_edges(grey, 1, 5).sum() > canny_edges(grey, 100, 200).sum() > canny_edges(grey, 250, 255).sum()
    with pytest.raises(InvalidValue, match="threshold_a.*threshold_b"):
        preprocess(picture(), "canny", (64, 64), a=200, b=100)
    with pytest.raises(InvalidValue, match="threshold_b: 300.*1 to 255"):
        preprocess(picture(), "canny", (64, 64), b=300)


@pytest.mark.parametrize("module", [name for name, p in PREPROCESSORS.items() if p.needs is None])
@pytest.mark.parametrize("size, mode", [((64, 96), "Crop and resize"), ((128, 64), "Resize and fill"),
                                        ((96, 96), "Just resize")])
def test_every_weightless_preprocessor_gives_a_map_at_the_generation_size(module, size, mode):
    control = preprocess(picture(), module, size, mode, resolution=128)
    assert control.size == size and control.mode == "RGB"
    assert control == preprocess(picture(), module, size, mode, resolution=128)  # the same input, the same map


def test_the_maps_say_what_they_should():
    source = picture()
    grey = np.asarray(preprocess(source, "recolor_luminance", (160, 120), "Just resize", 120).convert("L"), float)
    assert abs(grey - np.asarray(source.convert("L"), float)).mean() < 4  # luminance kept, colour gone
    inverted = np.asarray(preprocess(source, "invert", (160, 120), "Just resize", 120), float)
    assert abs(inverted + np.asarray(source, float) - 255).mean() < 3
    blurred = preprocess(source, "blur_gaussian", (160, 120), "Just resize", 120, a=4)
    assert np.asarray(blurred, float).std() < np.asarray(source, float).std()
    shuffled = [preprocess(source, "shuffle", (160, 120), "Just resize", 120, seed=s) for s in (1, 1, 2)]
    assert shuffled[0] == shuffled[1] and shuffled[0] != shuffled[2]


def test_a_drawn_scribble_becomes_white_strokes_on_black():
    sketch = Image.new("RGB", (100, 100), "white")
    ImageDraw.Draw(sketch).line((10, 50, 90, 50), fill="black", width=3)
    control = np.asarray(preprocess(sketch, "scribble", (100, 100), "Just resize", 100).convert("L"))
    assert control[50, 20:80].min() == 255 and control[10:30, :].max() == 0


def test_pixel_perfect_resolution_fits_the_generation_size():
    assert pixel_perfect(Image.new("RGB", (1000, 500)), (512, 512), "Crop and resize") == 512
    assert pixel_perfect(Image.new("RGB", (1000, 500)), (512, 512), "Resize and fill") == 256
    control = preprocess(picture(), "canny", (64, 48), "Crop and resize", resolution=None)
    assert control.size == (64, 48)


def test_unknown_modules_and_model_preprocessors_offline_say_what_is_wrong():
    with pytest.raises(UnknownName, match="module.*'cany'.*canny"):
        preprocess(picture(), "cany", (64, 64))
    with pytest.raises(ModelUnavailable, match="depth model .*not on this machine"):
        preprocess(picture(), "depth_anything_v2", (64, 64))
    with pytest.raises(ModelUnavailable, match="controlnet_aux"):
        preprocess(picture(), "openpose", (64, 64))
    with pytest.raises(InvalidValue, match="processor_res"):
        preprocess(picture(), "canny", (64, 64), resolution=10)


# -- ControlNet models and pipelines on the tiny models ----------------------------------------------

from studio import Studio  # noqa: E402
from studio.control.models import BUILTIN, ControlNets, check_fits  # noqa: E402
from studio.control.pipes import control_pipe  # noqa: E402


def run(pipe, **kwargs):
    base = dict(prompt="a lighthouse", num_inference_steps=4, width=64, height=64, guidance_scale=5.0,
                generator=torch.Generator("cpu").manual_seed(3), output_type="np")
    return pipe(**{**base, **kwargs}).images[0]


@pytest.fixture(scope="module", params=["tiny", "tiny-xl"])
def controlled(request):
    # A studio of its own: these tests call the pipelines directly, and a ControlNet pipeline cached by
    # an earlier request on the session's studio keeps the scheduler of that request's sampler.
    loaded = Studio(device="cpu", cache_size=1).load(request.param)
    nets = ControlNets(loaded.device)
    net = nets.get(BUILTIN + loaded.family)
    return loaded, nets, net


@pytest.mark.slow
def test_a_controlnet_steers_shares_the_model_weights_and_weight_zero_is_the_plain_image(controlled):
    loaded, nets, net = controlled
    edges = preprocess(picture(), "canny", (64, 64))
    pipe = control_pipe(loaded, "txt2img", [net])
    assert pipe.unet is loaded.pipe.unet and pipe.vae is loaded.pipe.vae  # nothing reloaded or copied
    assert nets.get(BUILTIN + loaded.family) is net  # loaded once
    plain = run(loaded.pipe)
    steered = run(pipe, image=[edges], controlnet_conditioning_scale=[1.0])
    off = run(pipe, image=[edges], controlnet_conditioning_scale=[0.0])
    assert np.array_equal(off, plain)  # weight 0: not run at all, bit for bit the plain image
    assert pipe.controlnet.runs == 4  # only the steered call ran it, once a step
    assert not np.allclose(steered, plain, atol=1e-3)
    late = run(pipe, image=[edges], controlnet_conditioning_scale=[1.0], control_guidance_start=[0.5],
               control_guidance_end=[1.0])
    assert not np.allclose(late, steered, atol=1e-4) and not np.allclose(late, plain, atol=1e-4)


@pytest.mark.slow
def test_two_units_at_once_and_a_silent_one_costs_nothing(controlled):
    loaded, nets, net = controlled
    edges = preprocess(picture(), "canny", (64, 64))
    blurred = preprocess(picture(), "blur_gaussian", (64, 64))
    pipe = control_pipe(loaded, "txt2img", [net, net])
    one = run(control_pipe(loaded, "txt2img", [net]), image=[edges], controlnet_conditioning_scale=[1.0])
    pipe = control_pipe(loaded, "txt2img", [net, net])
    both = run(pipe, image=[edges, blurred], controlnet_conditioning_scale=[1.0, 0.8])
    assert pipe.controlnet.runs == 8 and not np.allclose(both, one, atol=1e-4)
    pipe = control_pipe(loaded, "txt2img", [net, net])
    second_off = run(pipe, image=[edges, blurred], controlnet_conditioning_scale=[1.0, 0.0])
    assert pipe.controlnet.runs == 4 and np.array_equal(second_off, one)


def test_a_controlnet_of_another_family_is_refused_by_name(studio):
    sd15, sdxl = studio.load("tiny"), studio.load("tiny-xl")
    nets = ControlNets(sd15.device)
    check_fits(nets.get(BUILTIN + "sd15"), "sd15-net", sd15.pipe, "unet", "tiny")
    with pytest.raises(InvalidValue, match="controlnet model: 'sd15-net'.*tiny-xl"):
        check_fits(nets.get(BUILTIN + "sd15"), "sd15-net", sdxl.pipe, "unet", "tiny-xl")
    with pytest.raises(InvalidValue, match="controlnets.*ControlNet support"):
        control_pipe(studio.load("tiny-zimage"), "txt2img", [])


# -- ControlNet units in requests, through the engine ------------------------------------------------

from support import pixels, png_copies, tiny_request  # noqa: E402
from studio import GenerationRequest  # noqa: E402
from studio.metadata import read_png  # noqa: E402
from studio.pnginfo import recall  # noqa: E402


def unit(family: str = "sd15", **fields) -> dict:
    return {"image": picture(), "module": "canny", "model": BUILTIN + family, **fields}


def test_a_unit_steers_the_image_reproducibly_and_weight_zero_is_the_plain_image(studio):
    plain = studio.run(tiny_request(seed=4))
    steered = studio.run(tiny_request(seed=4, controlnets=[unit()]))
    again = studio.run(tiny_request(seed=4, controlnets=[unit()]))
    off = studio.run(tiny_request(seed=4, controlnets=[unit(weight=0.0)]))
    late = studio.run(tiny_request(seed=4, controlnets=[unit(guidance_start=0.5)]))
    assert np.array_equal(pixels(steered.images[0]), pixels(again.images[0]))
    assert np.array_equal(pixels(off.images[0]), pixels(plain.images[0]))
    assert not np.array_equal(pixels(steered.images[0]), pixels(plain.images[0]))
    assert not np.array_equal(pixels(late.images[0]), pixels(steered.images[0]))
    loads = studio.load_count
    studio.run(tiny_request(seed=5, controlnets=[unit()]))
    assert studio.load_count == loads  # nothing loaded again: the model's weights are shared


@pytest.mark.slow
@pytest.mark.parametrize("fields", [
    dict(task="img2img", init_image=picture(64, 64), denoising_strength=0.6, batch_size=2),
    dict(task="inpaint", init_image=picture(64, 64), mask=Image.new("L", (64, 64), 255), batch_size=2),
    dict(hires=True, hires_scale=1.5, hires_steps=2)])
def test_units_steer_every_task(studio, fields):
    plain = studio.run(tiny_request(seed=6, **fields))
    steered = studio.run(tiny_request(seed=6, controlnets=[unit()], **fields))
    assert [i.size for i in steered.images] == [i.size for i in plain.images]
    assert not np.array_equal(pixels(steered.images[0]), pixels(plain.images[0]))


def test_a_result_carries_the_maps_its_units_used(studio):
    result = studio.run(tiny_request(seed=2, controlnets=[unit(weight=0.0), unit(module="invert")]))
    [(index, used)] = result.control_maps  # the silent unit made none
    assert index == 1 and used.size == (64, 64)
    assert used == preprocess(picture(), "invert", (64, 64))


@pytest.mark.slow
def test_two_units_on_sdxl(studio):
    two = studio.run(tiny_request(model="tiny-xl", seed=2, controlnets=[
        unit("sdxl"), unit("sdxl", module="blur_gaussian", weight=0.6, guidance_end=0.5)]))
    one = studio.run(tiny_request(model="tiny-xl", seed=2, controlnets=[unit("sdxl")]))
    assert not np.array_equal(pixels(two.images[0]), pixels(one.images[0]))


@pytest.mark.slow
def test_units_are_in_the_infotext_as_a1111_writes_them_and_the_png_regenerates(studio, tmp_path):
    units = [unit(threshold_a=50, threshold_b=150), unit(module="tile_resample", weight=0.5, pixel_perfect=True)]
    result = studio.run(tiny_request(seed=-1, controlnets=units))
    text = result.infotexts[0]
    assert ('ControlNet 0: "Module: canny, Model: builtin:controlnet/sd15, Weight: 1.0, Resize Mode: Crop and '
            'Resize, Processor Res: 512, Threshold A: 50.0, Threshold B: 150.0, Guidance Start: 0.0, Guidance End: '
            '1.0, Pixel Perfect: False, Control Mode: Balanced"') in text
    assert 'ControlNet 1: "Module: tile_resample, Model: builtin:controlnet/sd15, Weight: 0.5' in text
    for path in png_copies(result, tmp_path):
        fields = recall(read_png(path)).fields
        with pytest.raises(InvalidValue, match=r"controlnets\[0\].image"):
            studio.run(GenerationRequest.from_settings(fields))  # pictures are never in PNGs
        fields["controlnets"] = [dataclasses.replace(u, image=picture()) for u in fields["controlnets"]]
        again = studio.run(GenerationRequest.from_settings(fields))
        assert again.request == result.request
        assert np.array_equal(pixels(again.images[0]), pixels(result.images[0])), path.name


@pytest.mark.parametrize("units, message", [
    ([unit(image=None)], r"controlnets\[0\].image"),
    ([unit("sdxl")], r"controlnets\[0\].model: 'builtin:controlnet/sdxl'.*tiny"),
    ([unit(module="cany")], r"controlnets\[0\].module: 'cany'.*canny"),
    ([unit()] * 4, r"controlnets: '4 ControlNet units'.*at most 3"),
    ([unit(weight=3)], r"controlnets\[0\].weight: 3.*0..2|controlnets\[0\].weight"),
    ([unit(guidance_start=0.8, guidance_end=0.2)], r"controlnets\[0\].guidance_start.*guidance_end"),
    ([unit(threshold_a=300)], r"controlnets\[0\].threshold_a: 300"),
    ([unit(colour="red")], r"controlnets\[0\].colour"),
    ([unit(model="")], r"controlnets\[0\].model"),
])
def test_bad_units_are_refused_with_the_field_named(studio, units, message):
    with pytest.raises(InvalidValue, match=message):
        studio.run(tiny_request(controlnets=units))


def test_a_controlnet_whose_maps_would_not_meet_the_latents_is_refused_by_name(studio, tmp_path):
    """A ControlNet made with the usual 8x conditioning embedding on the tiny model (a 2x VAE): refused
    before it runs, not a shape error from inside the pipeline."""
    from diffusers import ControlNetModel

    ControlNetModel.from_unet(studio.load("tiny").pipe.unet).save_pretrained(tmp_path / "eight")
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].model: .*eight.*shrink 2x.*shrinks them 8x"):
        studio.run(tiny_request(controlnets=[unit(model=str(tmp_path / "eight"))]))


def test_a_family_without_controlnet_says_so(studio):
    with pytest.raises(InvalidValue, match="controlnets.*ControlNet support"):
        studio.run(tiny_request(model="tiny-zimage", sampler="Euler", controlnets=[unit()]))


@pytest.mark.slow
def test_sd3_units_steer_text_to_image_and_say_what_else_they_cannot(studio):
    sd3 = dict(model="tiny-sd3", sampler="Euler", seed=4)
    plain = studio.run(tiny_request(**sd3))
    one = studio.run(tiny_request(**sd3, controlnets=[unit("sd3")]))
    two = studio.run(tiny_request(**sd3, controlnets=[unit("sd3"), unit("sd3", module="blur_gaussian", weight=0.5)]))
    late = studio.run(tiny_request(**sd3, controlnets=[unit("sd3", guidance_start=0.5)]))
    off = studio.run(tiny_request(**sd3, controlnets=[unit("sd3", weight=0.0)]))
    assert len({pixels(r.images[0]).tobytes() for r in (plain, one, two, late)}) == 4
    assert np.array_equal(pixels(off.images[0]), pixels(plain.images[0]))
    assert len(studio.run(tiny_request(**sd3, batch_size=2, controlnets=[unit("sd3")])).images) == 2
    for fields in (dict(task="img2img", init_image=picture(64, 64)), dict(hires=True, hires_steps=2)):
        with pytest.raises(InvalidValue, match=r"controlnets.*none for img2img on tiny-sd3.*txt2img only"):
            studio.run(tiny_request(**sd3, controlnets=[unit("sd3")], **fields))
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].model: 'builtin:controlnet/sd15'.*tiny-sd3"):
        studio.run(tiny_request(**sd3, controlnets=[unit()]))


FLUX = dict(model="tiny-flux", sampler="Euler", cfg_scale=3.5)


@pytest.mark.slow
def test_flux_units_steer_reproducibly_weight_zero_is_plain_and_sd_controlnets_are_refused(studio):
    plain = studio.run(tiny_request(seed=3, **FLUX))
    steered = studio.run(tiny_request(seed=3, controlnets=[unit("flux")], **FLUX))
    again = studio.run(tiny_request(seed=3, controlnets=[unit("flux")], **FLUX))
    off = studio.run(tiny_request(seed=3, controlnets=[unit("flux", weight=0.0)], **FLUX))
    two = studio.run(tiny_request(seed=3, controlnets=[unit("flux"), unit("flux", module="blur_gaussian",
                                                                           guidance_end=0.5)], **FLUX))
    assert np.array_equal(pixels(steered.images[0]), pixels(again.images[0]))
    assert np.array_equal(pixels(off.images[0]), pixels(plain.images[0]))
    assert not np.array_equal(pixels(steered.images[0]), pixels(plain.images[0]))
    assert not np.array_equal(pixels(two.images[0]), pixels(steered.images[0]))
    assert 'ControlNet 0: "Module: canny, Model: builtin:controlnet/flux' in steered.infotexts[0]
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].model: 'builtin:controlnet/sd15'.*in_channels 64"):
        studio.run(tiny_request(controlnets=[unit("sd15")], **FLUX))


@pytest.mark.slow
@pytest.mark.parametrize("fields", [
    dict(task="img2img", init_image=picture(64, 64), denoising_strength=0.6),
    dict(task="inpaint", init_image=picture(64, 64), mask=Image.new("L", (64, 64), 255)),
    dict(hires=True, hires_scale=1.5, hires_steps=2)])
def test_flux_units_steer_every_task(studio, fields):
    plain = studio.run(tiny_request(seed=6, **FLUX, **fields))
    steered = studio.run(tiny_request(seed=6, controlnets=[unit("flux")], **FLUX, **fields))
    assert [i.size for i in steered.images] == [i.size for i in plain.images]
    assert not np.array_equal(pixels(steered.images[0]), pixels(plain.images[0]))


@pytest.mark.slow
def test_control_modes_weigh_the_controlnet_as_a1111_and_are_recorded(studio):
    """"My prompt is more important" weighs the ControlNet's outer layers down; "ControlNet is more
    important" also keeps it off CFG's negative half, so without CFG the two are the same image."""
    balanced, prompt, control = (studio.run(tiny_request(seed=9, controlnets=[unit(control_mode=mode)]))
                                 for mode in CONTROL_MODES)
    assert len({pixels(r.images[0]).tobytes() for r in (balanced, prompt, control)}) == 3
    assert 'Control Mode: ControlNet is more important"' in control.infotexts[0]
    no_cfg = [studio.run(tiny_request(seed=9, cfg_scale=1.0, controlnets=[unit(control_mode=mode)]))
              for mode in CONTROL_MODES[1:]]
    assert np.array_equal(pixels(no_cfg[0].images[0]), pixels(no_cfg[1].images[0]))
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].control_mode: 'louder'.*Balanced"):
        studio.run(tiny_request(controlnets=[unit(control_mode="louder")]))
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].control_mode.*Balanced on tiny-flux"):
        studio.run(tiny_request(model="tiny-flux", controlnets=[unit("flux", control_mode=CONTROL_MODES[1])]))


def test_soft_weights_leave_the_middle_block_and_fade_outwards():
    down, mid = [torch.ones(2, 1, 1, 1) for _ in range(12)], torch.ones(2, 1, 1, 1)
    soft, soft_mid = in_mode(down, mid, CONTROL_MODES[1], guided=True)
    assert soft_mid.flatten().tolist() == [1, 1] and abs(soft[0][0].item() - 0.825 ** 12) < 1e-6
    strong, _ = in_mode(down, mid, CONTROL_MODES[2], guided=True)
    assert strong[11][:, 0, 0, 0].tolist() == pytest.approx([0.0, 0.825])  # the negative half gets none


@pytest.mark.slow
@pytest.mark.parametrize("model, net", [("tiny-xl", "sdxl-union"), ("tiny-flux", "flux-union")])
def test_union_controlnets_take_their_control_type_from_the_unit_or_its_preprocessor(studio, model, net):
    plain = studio.run(tiny_request(model=model, seed=3))
    canny = studio.run(tiny_request(model=model, seed=3, controlnets=[unit(net)]))
    named = studio.run(tiny_request(model=model, seed=3, controlnets=[unit(net, union_type="canny")]))
    tile = studio.run(tiny_request(model=model, seed=3, controlnets=[unit(net, union_type="tile")]))
    two = studio.run(tiny_request(model=model, seed=3, controlnets=[
        unit(net), unit(net, module="blur_gaussian", weight=0.5)]))
    off = studio.run(tiny_request(model=model, seed=3, controlnets=[unit(net, weight=0.0)]))
    assert np.array_equal(pixels(canny.images[0]), pixels(named.images[0]))  # canny picks canny
    assert len({pixels(r.images[0]).tobytes() for r in (plain, canny, tile, two)}) == 4
    assert np.array_equal(pixels(off.images[0]), pixels(plain.images[0]))
    assert 'Control Mode: Balanced, Union Control Type: tile"' in tile.infotexts[0]
    for fields in (dict(task="img2img", init_image=picture(64, 64), denoising_strength=0.6),
                   dict(hires=True, hires_scale=1.5, hires_steps=2)):
        assert studio.run(tiny_request(model=model, controlnets=[unit(net)], **fields)).images
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].union_type: ''.*preprocessor invert picks none"):
        studio.run(tiny_request(model=model, controlnets=[unit(net, module="invert")]))
    with pytest.raises(InvalidValue, match=r"controlnets\[0\].union_type: 'colour'"):
        studio.run(tiny_request(model=model, controlnets=[unit(net, union_type="colour")]))


def test_union_and_plain_sdxl_controlnets_do_not_mix_and_union_kinds_are_found(studio, tmp_path):
    from studio.control.models import kind_of
    from studio.families import family

    with pytest.raises(InvalidValue, match=r"controlnets\[1\].model.*same kind as unit 0's \(ControlNetUnionModel"):
        studio.run(tiny_request(model="tiny-xl", controlnets=[unit("sdxl-union"), unit("sdxl")]))
    sdxl = family("sdxl")
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "config.json").write_text('{"_class_name": "ControlNetModel", "num_control_type": 8}')
    assert kind_of(str(tmp_path / "net"), sdxl) == "ControlNetUnionModel"  # its control types say so
    assert kind_of("someone/controlnet-union-sdxl", sdxl) == "ControlNetUnionModel"  # by name, offline
    assert kind_of(BUILTIN + "sdxl", sdxl) == "ControlNetModel"
    assert kind_of(BUILTIN + "sdxl-union", family("sd15")) == "ControlNetModel"  # SD 1.x has no union kind
