"""ADetailer's arguments in A1111's API, as the detailer's fields: pure functions, no I/O.

`alwayson_scripts: {"ADetailer": {"args": [true, false, {"ad_model": "face_yolov8n.pt", ...}]}}`: args[0]
switches ADetailer on (optional), args[1] is its "skip img2img" (optional: on img2img, the detailer alone on
the init image, which here is image to image at denoising strength 0), then one object per ADetailer tab
(its ADetailerArgs). The first tab with a model runs; a second one is reported in `ignored`. ADetailer's
YOLO and MediaPipe models name what they find (`face_yolov8n.pt`: faces): the detector looks for that with
its text query. Arguments this detailer has no use for are reported in `ignored` when they ask for anything
but ADetailer's default, as the door reports A1111's own (studio/web/sdapi/translate.py).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import InvalidValue
from .fields import AD_ARGS, MAX_REGIONS
from .targets import DETAIL_TASKS, TARGETS, is_detector_name, target_of

SCRIPT = "ADetailer"
TAKEN = {"ad_prompt", "ad_negative_prompt", "ad_confidence", "ad_dilate_erode", "ad_mask_blur", "ad_denoising_strength",
         "ad_inpaint_only_masked_padding"}  # as they are, to the field AD_ARGS names
# ADetailer's arguments (adetailer/args.py) that change nothing here at these values, its defaults
NO_EFFECT = {"ad_tap_enable": True, "ad_mask_min_ratio": 0.0, "ad_mask_max_ratio": 1.0, "ad_x_offset": 0,
             "ad_y_offset": 0, "ad_mask_merge_invert": "None", "ad_inpaint_only_masked": True, "ad_use_steps": False,
             "ad_use_cfg_scale": False, "ad_use_checkpoint": False, "ad_use_vae": False, "ad_use_sampler": False,
             "ad_use_noise_multiplier": False, "ad_use_clip_skip": False, "ad_restore_face": False,
             "ad_controlnet_model": "None", "is_api": True}
# ... and those that count only with a switch on (ad_steps without ad_use_steps changes nothing in ADetailer either)
SWITCHED = {"ad_steps": "ad_use_steps", "ad_cfg_scale": "ad_use_cfg_scale", "ad_checkpoint": "ad_use_checkpoint",
            "ad_vae": "ad_use_vae", "ad_sampler": "ad_use_sampler", "ad_scheduler": "ad_use_sampler",
            "ad_noise_multiplier": "ad_use_noise_multiplier", "ad_clip_skip": "ad_use_clip_skip",
            "ad_controlnet_module": "ad_controlnet_model", "ad_controlnet_weight": "ad_controlnet_model",
            "ad_controlnet_guidance_start": "ad_controlnet_model", "ad_controlnet_guidance_end": "ad_controlnet_model",
            "ad_inpaint_width": "ad_use_inpaint_width_height", "ad_inpaint_height": "ad_use_inpaint_width_height"}
KNOWN = {"ad_model", "ad_model_classes", "ad_tab_enable", "ad_mask_k_largest", "ad_use_inpaint_width_height", *TAKEN,
         *NO_EFFECT, *SWITCHED}
SHAPE = '[true, false, {"ad_model": "face_yolov8n.pt", ...}]'


def settings(script: Any, task: str, notes: list[str], ignored: dict[str, Any]) -> dict[str, Any]:
    """The detailer's settings for ADetailer's script arguments on a request of `task` (none when it is off)."""
    where = f"alwayson_scripts.{SCRIPT}.args"
    args = script.get("args") if isinstance(script, Mapping) else None
    if not isinstance(args, list):
        raise InvalidValue(where, type(args).__name__, f"a list: {SHAPE}")
    for i, arg in enumerate(args):
        if not isinstance(arg, (bool, Mapping)):
            raise InvalidValue(f"{where}[{i}]", type(arg).__name__,
                               f"true / false, or an object of ad_ arguments: {SHAPE}")
    enabled = args[0] if args and isinstance(args[0], bool) else True
    tabs = [(i, tab) for i, tab in enumerate(args) if isinstance(tab, Mapping) and str(tab.get("ad_model", "None"))
            != "None" and tab.get("ad_tab_enable", True) is not False]
    if not enabled or not tabs:
        return {}
    if task not in DETAIL_TASKS:
        ignored[where] = f"(the detailer runs after txt2img and img2img here, not after {task})"
        return {}
    for i, _ in tabs[1:]:
        ignored[f"{where}[{i}]"] = "(one ADetailer tab runs here: the first with a model)"
    index, tab = tabs[0]
    at = f"{where}[{index}]"
    found: dict[str, Any] = {"detailer": True, **_model(tab, at, notes)}
    found.update({name: tab[key] for name, key in AD_ARGS.items() if key in TAKEN and tab.get(key) is not None})
    largest = tab.get("ad_mask_k_largest") or 0  # 0: every region (here at most MAX_REGIONS)
    found["detailer_max"] = min(largest, MAX_REGIONS) if isinstance(largest, int) and largest > 0 else MAX_REGIONS
    if isinstance(largest, int) and largest > MAX_REGIONS:
        notes.append(f"{at}.ad_mask_k_largest {largest}: at most {MAX_REGIONS} regions are repainted here")
    if tab.get("ad_use_inpaint_width_height"):
        found["detailer_width"], found["detailer_height"] = (tab.get("ad_inpaint_width", 512),
                                                             tab.get("ad_inpaint_height", 512))
    if tab.get("ad_inpaint_only_masked") is False:
        notes.append(f"{at}.ad_inpaint_only_masked false: the detailer repaints only each region (and its padding) "
                     "here, at the inpaint size")
    if task == "img2img" and len(args) > 1 and args[1] is True:  # ADetailer's "skip img2img"
        found["denoising_strength"] = 0.0
        notes.append(f"{where}[1] (skip img2img): image to image ran at denoising strength 0, then the detailer")
    for key, value in tab.items():
        if key not in KNOWN:
            ignored[f"{at}.{key}"] = "(not an ADetailer argument)"
        elif key in NO_EFFECT and value != NO_EFFECT[key] and key not in ("ad_inpaint_only_masked",):
            ignored[f"{at}.{key}"] = value
        elif key in SWITCHED and key not in ("ad_inpaint_width", "ad_inpaint_height") and \
                tab.get(SWITCHED[key], NO_EFFECT[SWITCHED[key]]) not in (False, "None", None):
            ignored[f"{at}.{key}"] = value
    return _checked(found, at)


def _model(tab: Mapping[str, Any], at: str, notes: list[str]) -> dict[str, Any]:
    """The detector and its target from ADetailer's model (and YOLO-World's classes)."""
    model = str(tab["ad_model"]).strip()
    classes = [c.strip().lower() for c in str(tab.get("ad_model_classes") or "").split(",") if c.strip()]
    # A detector named as the model (ours: builtin:owlv2, an OWLv2 Hub id) looks for faces unless the classes say.
    target = next((c for c in classes if c in TARGETS), None) or target_of(model) or (
        "face" if is_detector_name(model) else None)
    if target is None:
        raise InvalidValue(f"{at}.ad_model", model, "a face, hand or person model (face_yolov8n.pt, hand_yolov8n.pt, "
                                                    "person_yolov8n-seg.pt, mediapipe_face_full...), a detector (builtin:owlv2, an OWLv2 "
                                                    f"Hub id), or ad_model_classes naming one of {', '.join(TARGETS)}")
    if is_detector_name(model):
        return {"detailer_model": model, "detailer_target": target}
    notes.append(f"{at}.ad_model {model!r}: the detector looked for {target} (its text query)")
    return {"detailer_target": target}


def _checked(found: dict[str, Any], at: str) -> dict[str, Any]:
    """Each value checked as its field checks it, a refusal naming ADetailer's argument the caller sent."""
    from ..fields import TABLE

    for name, value in found.items():
        if name in AD_ARGS and name not in ("detailer_width", "detailer_height", "detailer_target"):
            try:
                TABLE[name].validate(value, None)
            except InvalidValue as exc:
                raise InvalidValue(f"{at}.{AD_ARGS[name]}", value, exc.allowed) from None
    return found
