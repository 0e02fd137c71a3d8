"""What the engine lets in from a caller it does not trust: this studio's path rule and cost cap, and
a request received from elsewhere (a Ray front door's pickle) checked again as this process's own.
The service layer's plan uses the same checks, so each is written once."""

from __future__ import annotations

from ..config import StudioConfig
from ..errors import InvalidValue
from ..request import GenerationRequest, RequestBase, request_class
from .paths import check_model_name


def check_cost(cost: float, cap: float | None) -> None:
    """Refuse a call whose cost (megapixel-steps, every batch and pass) is more than this studio
    allows, before it runs."""
    if cap is not None and cost > cap:
        raise InvalidValue("cost", f"{cost:.0f} megapixel-steps",
                           f"at most {cap:g} per Generate on this studio (--max-cost; width x height x steps x "
                           "batch size x batch count, hires pass included, plus long prompts and ControlNet "
                           "preprocessing): fewer steps, a smaller size or batch")


def check_work(request: RequestBase) -> None:
    """Refuse, by the field that asks for it, work the cost's megapixel-steps would not bound on their
    own: a prompt of more than MAX_PROMPT_CHUNKS chunks (a BREAK flood of a cheap 64 px request), a
    ControlNet picture whose resize to the preprocessor resolution would be huge. Before any work."""
    from ..control.preprocessors import read_size
    from ..prompts import check_chunks
    from ..request import prompt_chunks

    for name, chunks in prompt_chunks(request).items():
        check_chunks(name, chunks)
    if getattr(request, "prompt_syntax", None) == "A1111":  # prompt editing: each text is one more encoding
        from ..prompt_schedule import check_schedule, hires_steps

        hires = hires_steps(request)
        for name in ("prompt", "negative_prompt"):
            for steps in {None, hires}:
                check_schedule(name, getattr(request, name), request.steps, steps)
    size = (request.width, request.height)
    for i, unit in enumerate(getattr(request, "controlnets", ())):
        if unit.active() and unit.image is not None:
            read_size(unit.image.size, unit.module, size, unit.resize_mode,
                      None if unit.pixel_perfect else unit.processor_res, f"controlnets[{i}]")


def check_upscalers(request: RequestBase, config: StudioConfig) -> None:
    """A model upscaler a request names is a file of this studio's upscalers folder (never a path):
    refused by name, with what the folder has, before anything runs."""
    from .. import upscalers
    from ..upscalers.folder import find

    named = {"hires_upscaler": getattr(request, "hires_upscaler", None) if getattr(request, "hires", False) else None}
    if getattr(request, "task", None) == "img2img" and getattr(request, "sd_upscale", False):
        named["sd_upscale_upscaler"] = request.sd_upscale_upscaler
    if getattr(request, "restore_faces", False) and request.face_restorer not in ("", "GFPGAN"):
        named["face_restorer"] = request.face_restorer
    if getattr(request, "task", None) == "upscale":
        named.update(upscaler=request.upscaler, upscaler_2=request.upscaler_2 if request.upscaler_2_visibility else None)
    for field, name in named.items():
        if name and name != "None" and upscalers.is_model(name):
            find(field, name, config.upscalers_dir, config.allow_pickle)


def admit(request: GenerationRequest, config: StudioConfig) -> GenerationRequest:
    """A request from elsewhere, rebuilt from its fields by this process's own request class (so every
    field and rule is checked here), within this studio's path rule and cost cap."""
    if not isinstance(request, RequestBase):
        raise InvalidValue("request", type(request).__name__, "a GenerationRequest")
    table = type(request).FIELDS
    check_model_name(getattr(request, "model", None), config.allowed_roots)
    own = request_class(table)(**{f.name: getattr(request, f.name) for f in table.request})
    check_work(own)
    check_upscalers(own, config)
    check_cost(own.cost(), config.max_cost)
    return own
