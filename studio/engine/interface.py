"""The engine's interface, as the service layer and the page use it. `Studio` (one device, in this
process) and `RemoteStudio` (Ray Serve replicas) both implement it; a test checks that they do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..config import StudioConfig
from ..devices import DeviceChoice
from ..events import PromptView, Result
from ..hardware import DeviceCard
from .jobs import Job

if TYPE_CHECKING:
    from ..request import GenerationRequest


@runtime_checkable
class Engine(Protocol):
    """What runs generations: a job per request, the models it holds, prompts described for them."""

    config: StudioConfig  # the settings it runs with (the service reads the caps and folders)
    device: DeviceChoice  # where the work runs (a replica's device, for a cluster)

    @property
    def slots(self) -> int:
        """How many generations run at once (the page's GPU concurrency)."""
        ...

    def generate(self, request: GenerationRequest, partial: bool = False) -> Job:
        """A cancellable job for a GenerationRequest; nothing runs until it is iterated. `partial`: a
        cancel mid-denoising ends with the images reached (partial.Interrupted), where the engine can."""
        ...

    def run(self, request: GenerationRequest) -> Result:
        """Generate and return the result (StudioError on failure or cancel)."""
        ...

    def load(self, model: str) -> Any:
        """Load a model (once), or raise the StudioError saying why it cannot be."""
        ...

    def is_loaded(self, model: str) -> bool: ...

    def loaded_models(self) -> list[str]: ...

    def devices(self) -> list[DeviceCard]:
        """Where the work runs: this studio's device, or every live replica's (the page's "Runs on")."""
        ...

    def describe_prompt(self, prompt: str, model: str | None = None, syntax: str = ...,
                        steps: int = ...) -> PromptView:
        """Fragments, weights and warnings; token counts once the model's tokenizers are at hand; which
        text runs at which of `steps` steps where the prompt is edited between them."""
        ...
