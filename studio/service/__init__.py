"""The application layer under every front door (the page, `/generate`, A1111's `/sdapi/v1`, the
ZeroGPU wrapper): a call's settings are planned (every field checked, paths, the cost), then executed
as batches on the engine, each step reported as a `RunView`. Front doors only translate shapes; they
never check a field or run a loop of their own. Nothing here imports gradio: what goes wrong is a
`StudioError`, which each door shows in its own way.

plan.py (settings -> a checked Plan), registry.py (the runs in progress by caller: Stop, skip, the
queue's estimates), execute.py (the run loop, here or on ZeroGPU's GPU worker).
"""

from .execute import HEARTBEAT_S, HISTORY_LIMIT, RunView, Service, SavedImage, status_line
from .plan import Plan, build_requests, check_cost, make_plan
from .registry import NOTHING_TO_STOP, Run, SessionJobs

__all__ = ["HEARTBEAT_S", "HISTORY_LIMIT", "NOTHING_TO_STOP", "Plan", "Run", "RunView", "SavedImage", "Service",
           "SessionJobs", "build_requests", "check_cost", "make_plan", "status_line"]
