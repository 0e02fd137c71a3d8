"""The Gradio page and the HTTP API: page.py (layout and wiring), widgets.py (the form, built from
the field table), handlers.py (what the page's events do), restore.py (PNG Info and History back
into the form), api.py (/generate, typed from the field table), runs.py (one Generate click, for
both), sessions.py (what Stop may cancel), queue_guard.py (the GPU queue per visitor), warmup.py
(the starting model), assets.py (the page's CSS and scripts), prompt_view.py
(the prompt as sent: counts and parsed view), control_view.py (ControlNet units and image prompts),
a1111/ (AUTOMATIC1111's /sdapi/v1 API, next to the page)."""

from .page import PageOptions, build_ui
from .warmup import FALLBACK_MODEL, Warmup

__all__ = ["FALLBACK_MODEL", "PageOptions", "Warmup", "build_ui"]
