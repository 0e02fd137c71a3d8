"""The ControlNet and IP-Adapter boxes list what fits the model: each known one is declared with the
family it is made for, the controlnets folder's files by what their names say; a fitting default is
picked (the builtin ones on a tiny model), "Show all" lists every one, and a Generate with an empty box
takes the default. Pure: no model runs, no page is served."""

from __future__ import annotations

import pytest

from studio.control import image_prompts
from studio.control.folder import family_by_name, is_adapter_name
from studio.families import FAMILIES
from studio.web import control_view as cv

FOREIGN = ("sdxl", "flux", "sd3")  # what an SD 1.5 model must not be offered


def test_every_known_one_is_declared_with_a_family_and_the_builtin_ones_are_the_tiny_models():
    for known in (cv.KNOWN_MODELS, cv.KNOWN_ADAPTERS):
        assert set(known.values()) <= set(FAMILIES)
        for name, family in known.items():
            if name.startswith(cv.BUILTIN):
                assert name.split("/")[1].split("-")[0] == family, name
            else:
                assert family_by_name(name) == family, name  # the name says the same
    assert set(image_prompts.A1111_MODULES) | {"XLabs-AI/flux-ip-adapter"} <= set(cv.KNOWN_ADAPTERS)


@pytest.mark.parametrize("model, family, tiny", [("tiny", "sd15", True), ("tiny-xl", "sdxl", True),
                                                 ("tiny-flux", "flux", True), ("tiny-sd3", "sd3", True),
                                                 ("sd15", "sd15", False), ("sdxl", "sdxl", False),
                                                 ("flux-dev", "flux", False), ("", None, False),
                                                 ("owner/some-model", None, False)])
def test_a_models_family_and_whether_it_is_tiny(model, family, tiny):
    assert cv.model_fit(model) == (family, tiny)


def test_the_tiny_model_is_offered_its_own_and_a_real_sd15_one_the_real_ones():
    assert cv.choices(None, cv.KNOWN_MODELS, "sd15", True) == ["builtin:controlnet/sd15"]
    assert cv.choices(None, cv.KNOWN_ADAPTERS, "sd15", True, adapters=True) == ["builtin:ip-adapter/sd15"]
    real = cv.choices(None, cv.KNOWN_MODELS, "sd15", False)
    assert real[0] == "lllyasviel/control_v11p_sd15_canny" and all("sd15" in name for name in real)
    adapters = cv.choices(None, cv.KNOWN_ADAPTERS, "sd15", False, adapters=True)
    assert adapters[0] == "ip-adapter_sd15" and all("sd15" in name for name in adapters)
    for name in (*real, *adapters):
        assert not any(family in name.lower() for family in FOREIGN), name
    assert cv.choices(None, cv.KNOWN_MODELS, "sdxl", True) == ["builtin:controlnet/sdxl",
                                                               "builtin:controlnet/sdxl-union"]
    assert cv.choices(None, cv.KNOWN_ADAPTERS, "flux", False, adapters=True) == ["XLabs-AI/flux-ip-adapter"]
    assert cv.choices(None, cv.KNOWN_ADAPTERS, "sd3", False, adapters=True) == []  # SD3 takes no adapter


def test_show_all_lists_every_one_those_that_fit_first_and_an_unknown_family_lists_all():
    every = cv.choices(None, cv.KNOWN_MODELS, "sd15", True, show_all=True)
    assert sorted(every) == sorted(cv.KNOWN_MODELS) and every[0] == "builtin:controlnet/sd15"
    assert cv.choices(None, cv.KNOWN_ADAPTERS, None, adapters=True) == list(cv.KNOWN_ADAPTERS)


@pytest.mark.parametrize("model, controlnet, adapter", [
    ("tiny", "builtin:controlnet/sd15", "builtin:ip-adapter/sd15"),
    ("tiny-xl", "builtin:controlnet/sdxl", "builtin:ip-adapter/sdxl"),
    ("tiny-flux", "builtin:controlnet/flux", "builtin:ip-adapter/flux"),
    ("tiny-sd3", "builtin:controlnet/sd3", None),
    ("sd15", "lllyasviel/control_v11p_sd15_canny", "ip-adapter_sd15"),
    ("sdxl", "xinsir/controlnet-union-sdxl-1.0", "ip-adapter_sdxl"),
    ("flux-dev", "InstantX/FLUX.1-dev-Controlnet-Union", "XLabs-AI/flux-ip-adapter"),
    ("z-image-turbo", None, None),  # nothing fits: nothing picked
    ("sd-turbo", None, None),  # SD 2.1 inside (its preset's `base`): SD 1.5's do not fit
])
def test_each_family_has_a_fitting_default(model, controlnet, adapter):
    fit = cv.model_fit(model)
    assert cv.default_model(cv.KNOWN_MODELS, *fit) == controlnet
    assert cv.default_model(cv.KNOWN_ADAPTERS, *fit) == adapter
    assert cv.fitted(None, cv.KNOWN_MODELS, None, *fit) == controlnet  # an empty box takes it


def test_sd_turbo_is_offered_no_sd15_controlnet_though_it_runs_in_the_sd15_pipeline():
    fit = cv.model_fit("sd-turbo")
    assert fit == ("sd21", False)
    assert cv.choices(None, cv.KNOWN_MODELS, *fit) == []
    assert cv.choices(None, cv.KNOWN_ADAPTERS, *fit, adapters=True) == []
    assert "lllyasviel/control_v11p_sd15_canny" in cv.choices(None, cv.KNOWN_MODELS, *fit, show_all=True)


def test_a_value_is_kept_when_it_fits_and_replaced_when_it_is_made_for_another_family():
    known = cv.KNOWN_MODELS
    assert cv.fitted("lllyasviel/control_v11p_sd15_scribble", known, None, "sd15", False) == \
        "lllyasviel/control_v11p_sd15_scribble"
    assert cv.fitted("builtin:controlnet/sdxl", known, None, "sd15", True) == "builtin:controlnet/sd15"
    assert cv.fitted("builtin:controlnet/sd15", known, None, "sdxl", False) == "xinsir/controlnet-union-sdxl-1.0"
    assert cv.fitted("builtin:controlnet/sdxl", known, None, "sd15", True, show_all=True) == \
        "builtin:controlnet/sdxl"  # picked from every family's on purpose
    assert cv.fitted("me/my-controlnet", known, None, "sd15", True) == "me/my-controlnet"  # typed by hand
    assert cv.fitted("builtin:controlnet/sdxl", known, None, None, False) == "builtin:controlnet/sdxl"


def test_the_controlnets_folders_files_are_listed_by_what_their_names_say(tmp_path):
    for name in ("control_v11p_sd15_canny", "diffusers_xl_canny_full", "flux-canny-v3", "my_net",
                 "ip-adapter_sd15_plus", "ip-adapter_sdxl_custom"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    assert family_by_name("sd3.5_large_controlnet_canny") == "sd3" and is_adapter_name("ip_adapter_x")
    nets = cv.choices(tmp_path, cv.KNOWN_MODELS, "sd15", False)
    assert nets[:2] == ["control_v11p_sd15_canny", "my_net"]  # the folder's first; a name saying no family: on every model
    assert "diffusers_xl_canny_full" not in nets and "flux-canny-v3" not in nets and "ip-adapter_sd15_plus" not in nets
    adapters = cv.choices(tmp_path, cv.KNOWN_ADAPTERS, "sdxl", False, adapters=True)
    assert adapters[0] == "ip-adapter_sdxl_custom" and "ip-adapter_sd15_plus" not in adapters
    every = cv.choices(tmp_path, cv.KNOWN_MODELS, "sd15", False, show_all=True)
    assert {"diffusers_xl_canny_full", "flux-canny-v3", "ip-adapter_sdxl_custom"} <= set(every)
    assert cv.fitted("diffusers_xl_canny_full", cv.KNOWN_MODELS, tmp_path, "sd15", False) == \
        "lllyasviel/control_v11p_sd15_canny"


def test_an_empty_box_takes_the_models_default_when_the_page_generates():
    from PIL import Image

    class Box:  # a stand-in for a component: the page's values are keyed by component
        pass

    model = Box()
    unit_parts = {key: Box() for key in cv.UNIT_KEYS}
    slot_parts = {key: Box() for key in image_prompts.FIELDS}
    unit = cv.Unit(unit_parts, None, None, None, None)
    controls = cv.Controls([unit], [cv.Slot(slot_parts, None)], model)
    picture = Image.new("RGB", (8, 8))
    data = {model: "tiny", unit_parts["enabled"]: True, unit_parts["image"]: picture, unit_parts["model"]: "",
            slot_parts["image"]: picture, slot_parts["model"]: None, slot_parts["weight"]: 1.0}
    settings = controls.settings(data)
    assert settings["controlnets"][0]["model"] == "builtin:controlnet/sd15"
    assert settings["image_prompts"][0]["model"] == "builtin:ip-adapter/sd15"
    data[slot_parts["model"]] = "ip-adapter_sd15"  # a chosen one is sent as chosen
    assert controls.settings(data)["image_prompts"][0]["model"] == "ip-adapter_sd15"


def test_the_api_asks_for_an_adapter_made_for_the_models_family():
    from studio.errors import InvalidValue
    from studio.field_spec import Context
    from studio.models import resolve_model

    field = image_prompts.PROMPT.fields["model"]
    with pytest.raises(InvalidValue) as tiny:
        field.check(field, "", Context(resolve_model("tiny")))
    assert "builtin:ip-adapter/sd15" in str(tiny.value) and "sdxl" not in str(tiny.value)
    with pytest.raises(InvalidValue) as flux:
        field.check(field, " ", Context(resolve_model("flux-dev")))
    assert "XLabs-AI/flux-ip-adapter" in str(flux.value) and "sd15" not in str(flux.value)
