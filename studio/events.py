"""What a running generation reports: frozen events, yielded in order by `Job`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from PIL import Image

    from .request import GenerationRequest


@dataclass(frozen=True)
class Status:
    """A phase change worth telling the user: loading a model, waiting for the GPU."""

    message: str


@dataclass(frozen=True)
class Progress:
    """Denoising progress: user-facing step k of n (not raw callback counts)."""

    step: int
    total: int
    elapsed_s: float
    it_per_s: float
    eta_s: float


@dataclass(frozen=True)
class Preview:
    """A live preview image of the predicted clean image at step k of n."""

    step: int
    total: int
    image: "Image.Image"


@dataclass(frozen=True)
class Timings:
    load_s: float  # 0.0 when the model was already cached
    generate_s: float  # the pipeline call: encode, denoise, decode
    total_s: float


@dataclass(frozen=True)
class Result:
    """The finished generation. `request.seed` is the seed actually used (never -1)."""

    request: "GenerationRequest"
    images: tuple["Image.Image", ...]
    seeds: tuple[int, ...]
    infotexts: tuple[str, ...]
    timings: Timings
    model_name: str
    notices: tuple[str, ...] = field(default=())
    prompt_warnings: tuple[str, ...] = field(default=())
    # (unit index in request.controlnets, the control map it steered with at the generation size)
    control_maps: tuple[tuple[int, "Image.Image"], ...] = field(default=())

    @property
    def seed(self) -> int:
        return self.seeds[0]


@dataclass(frozen=True)
class Cancelled:
    """The job stopped at the user's request; no image is returned."""

    step: int
    total: int


@dataclass(frozen=True)
class PromptView:
    """The parsed view of a prompt: fragments with final weights, tokens per chunk, warnings."""

    fragments: tuple[tuple[str, float], ...]
    chunk_tokens: tuple[int, ...] | None  # None until the model (its tokenizer) is loaded
    warnings: tuple[str, ...]
    token_limit: int | None = None  # tokens the encoder reads (FLUX's T5: 512); None: 75-token chunks
    schedule: tuple[tuple[int, int, str], ...] = ()  # prompt editing: (first step, last step, text); () unedited


Event = Union[Status, Progress, Preview, Result, Cancelled]
