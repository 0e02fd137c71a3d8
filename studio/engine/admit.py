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
                           "batch size x batch count, hires pass included): fewer steps, a smaller size or batch")


def admit(request: GenerationRequest, config: StudioConfig) -> GenerationRequest:
    """A request from elsewhere, rebuilt from its fields by this process's own request class (so every
    field and rule is checked here), within this studio's path rule and cost cap."""
    if not isinstance(request, RequestBase):
        raise InvalidValue("request", type(request).__name__, "a GenerationRequest")
    table = type(request).FIELDS
    check_model_name(getattr(request, "model", None), config.allowed_roots)
    own = request_class(table)(**{f.name: getattr(request, f.name) for f in table.request})
    check_cost(own.cost(), config.max_cost)
    return own
