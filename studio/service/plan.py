"""A call's plan: its settings (by field name) made into checked requests, one per batch, before
anything runs or any GPU time is asked for. The page's clicks, `/generate` and A1111's API all plan
through here; a Ray replica checks what it receives with the same path rule and cost cap
(studio/engine/admit.py), so a check exists once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ..config import StudioConfig
from ..dynamic.expand import expand
from ..dynamic.folder import WildcardFolder, folder_for
from ..engine.admit import check_cost, check_upscalers, check_work
from ..engine.paths import check_model_name
from ..errors import InvalidValue
from ..fields import TABLE, FieldTable
from ..request import RequestBase, request_class
from .plot import asked as plot_asked, plot_cells


@dataclass(frozen=True)
class Plan:
    """The checked requests of one call, in the order they run (batch count = how many)."""

    requests: tuple[RequestBase, ...]
    plot: Any = None  # an X/Y/Z plot's Layout (plot.py): its grids are drawn once the cells have run

    @property
    def cost(self) -> float:
        """Megapixel-steps, every batch and pass included (what --max-cost caps)."""
        return sum(request.cost() for request in self.requests)

    def __iter__(self) -> Iterator[RequestBase]:
        return iter(self.requests)

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, index: int) -> RequestBase:
        return self.requests[index]


def build_requests(settings: Mapping[str, Any], table: FieldTable = TABLE,
                   wildcards: WildcardFolder | None = None) -> list[RequestBase]:
    """The call's requests, one per batch (batch count), from settings by field name. Settings
    left out (or None where the model gives the default) take their defaults. Prompts with choices or
    wildcards are resolved per image (studio/dynamic/expand.py: a batch may become several requests)."""
    count = settings.get("batch_count")
    batches = request_class(table).from_settings(settings).batches(1 if count is None else count)
    return expand(batches, settings.get("dynamic_prompts"), wildcards)


def make_plan(settings: Mapping[str, Any], config: StudioConfig, table: FieldTable = TABLE) -> Plan:
    """A call's requests, checked (paths, every field, the cost); a StudioError names what is wrong."""
    if plot_asked(settings):  # an X/Y/Z plot: its cells, each planned so, are one call (plot.py)
        requests, layout = plot_cells(settings, config, table, lambda cell: make_plan(cell, config, table).requests)
        plan = Plan(tuple(requests), plot=layout)
        check_cost(plan.cost, config.max_cost)  # every cell's
        return plan
    # A shared studio refuses paths outside its folders before the model string touches the disk.
    check_model_name(settings.get("model"), config.allowed_roots)
    plan = Plan(tuple(build_requests(settings, table, folder_for(config.wildcards_dir, config.allowed_roots is None))))
    if len(plan) > 1 and plan[0].task == "upscale":
        raise InvalidValue("batch_count", len(plan), "1 for an upscale (it makes one picture)")
    for request in plan.requests:  # resolved prompts differ in length
        check_work(request)
    check_upscalers(plan[0], config)  # the batches differ by seed and prompt only
    check_cost(plan.cost, config.max_cost)
    return plan


__all__ = ["Plan", "build_requests", "check_cost", "make_plan"]
