"""ControlNet: preprocessors (a picture -> a control map), ControlNet models (loaded once, shared by
every pipeline that uses them) and the control pipelines built on a loaded model's own weights."""

from .preprocessors import PREPROCESSORS, Preprocessor, preprocess

__all__ = ["PREPROCESSORS", "Preprocessor", "preprocess"]
