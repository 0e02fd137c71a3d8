"""studio: a browser-based image studio for text-to-image diffusion (engine + Gradio UI)."""

from .version import __version__
from .config import StudioConfig
from .engine import Job, Studio
from .errors import InvalidValue, ModelLoadError, ModelUnavailable, StudioError, UnknownName
from .events import Cancelled, Preview, Progress, Result, Status
from .fields import FIELDS, TABLE
from .request import GenerationRequest

__all__ = [
    "__version__", "Studio", "StudioConfig", "Job", "GenerationRequest", "FIELDS", "TABLE",
    "Status", "Progress", "Preview", "Result", "Cancelled",
    "StudioError", "InvalidValue", "UnknownName", "ModelLoadError", "ModelUnavailable",
]
