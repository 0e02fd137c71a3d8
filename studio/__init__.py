"""studio: a browser-based image studio for text-to-image diffusion (engine + Gradio UI)."""

__version__ = "0.1.0"

from .engine import Job, Studio  # noqa: E402
from .errors import InvalidValue, ModelLoadError, ModelUnavailable, StudioError, UnknownName  # noqa: E402
from .events import Cancelled, Preview, Progress, Result, Status  # noqa: E402
from .request import GenerationRequest  # noqa: E402

__all__ = [
    "Studio", "Job", "GenerationRequest",
    "Status", "Progress", "Preview", "Result", "Cancelled",
    "StudioError", "InvalidValue", "UnknownName", "ModelLoadError", "ModelUnavailable",
]
