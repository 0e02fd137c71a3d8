"""The front doors, as adapters over the service layer (studio/service/): they translate shapes and
never check a field or run a loop of their own.

page.py (the Gradio page: layout and wiring), widgets.py (the form, built from the field table),
handlers.py (what the page's events do), restore.py (PNG Info and History back into the form),
generate_api.py (`/generate`, typed from the field table), calls.py (a page or `/generate` call:
the service's errors as Gradio's, the caller named), sessions.py (a tab's own signed history, a
session's owner), visitors.py (who a request comes from: address and visitor cookie), limits.py
(body caps and uploads), queue_guard.py (the GPU queue per visitor), warmup.py (the starting model), assets.py (the page's CSS
and scripts), prompt_view.py (the prompt as sent: counts and parsed view), control_view.py
(ControlNet units and image prompts), sdapi/ (AUTOMATIC1111's /sdapi/v1 API, next to the page).
"""

from .page import PageOptions, build_ui
from .warmup import FALLBACK_MODEL, Warmup

__all__ = ["FALLBACK_MODEL", "PageOptions", "Warmup", "build_ui"]
