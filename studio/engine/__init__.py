"""The engine: `Studio(...).generate(request)` returns a cancellable Job that yields events.

jobs.py (the event stream), device.py (the device thread), generation.py (one generation, step by
step), passes.py (one pipeline pass: scheduler, progress, previews, cancel), partial.py (what an interrupted
run hands back where asked: its images as far as they got), prompt_plan.py
(styles, LoRA tags, parsing, the encoding cache), paths.py (what a shared studio may open),
studio.py (the Studio that owns the caches).
"""

from .jobs import Job, coalesce
from .partial import Interrupted
from .studio import Studio

__all__ = ["Interrupted", "Job", "Studio", "coalesce"]
