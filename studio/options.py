"""The server's options, declared once: each flag's name, environment variable, default, check and
help. app.py's argparse parser, the defaults of `StudioConfig` and the page's `PageOptions`, and the
flags table of docs/reference.md all derive from this table (a test keeps the docs in step).

Adding a flag = one entry here + reading it where it takes effect. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

OFFLOAD_MODES = ("none", "model", "sequential")
QUANTIZE_MODES = ("none", "int8", "fp8")
ENGINES = ("local", "ray")
AUTO_MODEL = "auto"
LOCAL_MAX_COST = 20_000.0  # megapixel-steps: e.g. 8 SDXL images x 150 steps x a batch count of 10
SHARED_MAX_COST = 600.0  # about 20 SDXL images at 30 steps per click, for visitors of a public link
RAY_GROUP = "several GPUs: Ray Serve replicas behind this page (requirements-ray.txt)"


# -- checks (argparse `type=`: a bad value exits with the flag, the value and what is allowed) ------

def parse_auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError(f"--auth {value!r} is not valid; expected user:password")
    return user, password


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not valid; expected a whole number >= 1")
    return number


def port(value: str) -> int:
    number = positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"port {value!r} is not valid; expected 1..65535")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not valid; expected a number above 0")
    return number


def preview_method(value: str) -> str:
    from .previews import METHOD_NAMES

    if value not in METHOD_NAMES:
        raise argparse.ArgumentTypeError(f"{value!r} is not valid; expected one of {', '.join(METHOD_NAMES)}")
    return value


def fps(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0.1 <= number <= 120:
        raise argparse.ArgumentTypeError(f"{value!r} is not valid; expected previews a second from 0.1 to 120")
    return number


def is_set(text: str | None) -> bool:
    """An environment variable standing for a switch: set to anything but "" or "0"."""
    return (text or "") not in ("", "0")


@dataclass(frozen=True)
class Option:
    """One server flag. `default` is the value without the flag and without its variables; `env` are
    the environment variables read instead, first set wins (a Space sets STUDIO_*)."""

    flag: str
    help: str
    default: Any = None
    env: tuple[str, ...] = ()
    parse: Callable[[str], Any] | None = None  # argparse's type: also applied to a variable's text
    choices: Sequence[str] | None = None
    switch: bool = False  # store_true: a variable set to anything but "" or "0" turns it on
    metavar: str | None = None
    group: str = ""  # "": the main list
    default_text: str = ""  # the docs' default where it is worked out at start (e.g. by device)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def start_value(self, environ: Mapping[str, str]) -> Any:
        """The default argparse gets: a variable's text (checked by `parse` as a typed flag is), else
        the declared default."""
        for name in self.env:
            if environ.get(name) is not None:
                return is_set(environ[name]) if self.switch else environ[name]
        return self.default

    def add_to(self, parser: Any, environ: Mapping[str, str]) -> None:
        kwargs: dict[str, Any] = {"help": self.help, "default": self.start_value(environ)}
        if self.switch:
            kwargs["action"] = "store_true"
        else:
            if self.parse is not None:
                kwargs["type"] = self.parse
            if self.choices is not None:
                kwargs["choices"] = tuple(self.choices)
            if self.metavar is not None:
                kwargs["metavar"] = self.metavar
        parser.add_argument(self.flag, **kwargs)


OPTIONS: tuple[Option, ...] = (
    Option("--model", "preset name (sd15, sdxl, sd-turbo, sdxl-turbo, flux-schnell, tiny, ...), hub id, diffusers "
           "folder or .safetensors file (auto = sd15 on a GPU, sd-turbo on a CPU)", AUTO_MODEL, ("STUDIO_MODEL",)),
    Option("--host", "address to listen on (0.0.0.0 for every interface)", "127.0.0.1",
           ("STUDIO_HOST", "GRADIO_SERVER_NAME")),
    Option("--port", "port to listen on", 7860, ("STUDIO_PORT", "GRADIO_SERVER_PORT"), parse=port),
    Option("--share", "create a public Gradio link (use --auth with it)", False, switch=True),
    Option("--auth", "user:password required to open the page", parse=parse_auth, metavar="USER:PASS"),
    Option("--device", "auto, cuda, cuda:N, mps or cpu", "auto", ("STUDIO_DEVICE",)),
    Option("--dtype", "auto, fp16, bf16 or fp32", "auto", ("STUDIO_DTYPE",)),
    Option("--cache-size", "how many models stay loaded (LRU)", 2, ("STUDIO_CACHE_SIZE",), parse=positive_int),
    Option("--queue-size", "how many requests may wait before new ones are told the studio is busy", 16,
           ("STUDIO_QUEUE_SIZE",), parse=positive_int),
    Option("--max-queued", "how many requests one visitor may have waiting behind their running one", 2,
           ("STUDIO_MAX_QUEUED",), parse=positive_int),
    Option("--preview", "live preview method: auto (TAESD on a GPU, else latent2rgb), latent2rgb, taesd, vae, none",
           "auto", ("STUDIO_PREVIEW",), parse=preview_method),
    Option("--preview-fps", "most previews a second sent to the page", 10.0, ("STUDIO_PREVIEW_FPS",), parse=fps),
    Option("--outputs", "folder for finished PNGs with metadata, in date sub-folders", "outputs",
           ("STUDIO_OUTPUTS",)),
    Option("--outputs-max-gb", "most GB of PNGs the outputs folder keeps: past it, the oldest images are deleted",
           None, ("STUDIO_OUTPUTS_MAX_GB",), parse=positive_float,
           default_text="no limit; 5 on a Space with persistent storage"),
    Option("--no-outputs", "keep nothing on disk (images go to a temporary folder), e.g. on a Space", False,
           ("STUDIO_NO_OUTPUTS",), switch=True),
    Option("--models-dir", "folder whose .safetensors checkpoints and diffusers folders are listed in the page",
           "models", ("STUDIO_MODELS_DIR",)),
    Option("--loras-dir", "folder of LoRA .safetensors files, used by name: <lora:name:0.8>", "loras",
           ("STUDIO_LORAS_DIR",)),
    Option("--controlnets-dir", "folder of ControlNet and IP-Adapter files (.safetensors, or diffusers folders), "
           "used by name as A1111's models/ControlNet", "controlnets", ("STUDIO_CONTROLNETS_DIR",)),
    Option("--upscalers-dir", "folder of upscaler models (ESRGAN, Real-ESRGAN, 4x-UltraSharp, SwinIR, DAT, HAT: "
           ".safetensors, or .pth with --allow-pickle), used by name in hires fix and the Upscale tab as A1111's "
           "models/ESRGAN", "upscalers", ("STUDIO_UPSCALERS_DIR",)),
    Option("--embeddings-dir", "folder of textual-inversion embeddings (.safetensors, or .pt/.bin with "
           "--allow-pickle), used by name in the prompt as A1111's embeddings folder", "embeddings",
           ("STUDIO_EMBEDDINGS_DIR",)),
    Option("--wildcards-dir", "folder of wildcard files (name.txt, one choice a line; sub-folders too), used in "
           "prompts as __name__ (sd-dynamic-prompts' wildcards folder)", "wildcards", ("STUDIO_WILDCARDS_DIR",)),
    Option("--api-auth", "HTTP Basic users of the A1111 API (/sdapi/v1), as A1111's --api-auth; without it the "
           "page's --auth is used. A studio others can reach serves the API only with one of them", None,
           ("STUDIO_API_AUTH",), metavar="USER:PASS[,USER2:PASS2]"),
    Option("--no-api", "do not serve the A1111 API (/sdapi/v1)", False, switch=True),
    Option("--gpu-duration", "on a ZeroGPU Space: most seconds of GPU one Generate asks for; each asks what its "
           "steps, size and batch need, up to this", 120, ("STUDIO_GPU_DURATION",), parse=positive_int),
    Option("--allow-any-path", "let requests name model and LoRA files anywhere on this machine; by default a "
           "studio reachable by others (--share, or a --host other than 127.0.0.1) only opens files in "
           "--models-dir, --loras-dir, --controlnets-dir, --upscalers-dir, --embeddings-dir and the --model you "
           "started it with", False, switch=True),
    Option("--max-cost", "most megapixel-steps one Generate may ask for (width x height x steps x batch size x "
           "batch count, hires pass included; a 512 px 25-step image is 6.6)", None, ("STUDIO_MAX_COST",),
           parse=positive_float,
           default_text=f"{LOCAL_MAX_COST:g} locally, {SHARED_MAX_COST:g} when others can reach the studio"),
    Option("--allow-pickle", "allow pickle checkpoints (.ckpt/.pt/.bin): they can run arbitrary code", False,
           switch=True),
    Option("--offload", "keep weights on the CPU between uses to fit big models on a smaller CUDA GPU: model "
           "(a component at a time) or sequential (layer by layer, slowest)", "none", ("STUDIO_OFFLOAD",),
           choices=OFFLOAD_MODES),
    Option("--quantize", "load the denoiser quantized (torchao, requirements-quant.txt): int8 weight-only (any "
           "device, about half of bf16) or fp8 (CUDA GPUs with fp8)", "none", ("STUDIO_QUANTIZE",),
           choices=QUANTIZE_MODES),
    Option("--drop-t5", "load SD3 models without their T5 text encoder (about 9 GB less; prompts read by CLIP only)",
           False, ("STUDIO_DROP_T5",), switch=True),
    Option("--engine", "local: the engine runs in this process on one device; ray: it runs as Ray Serve replicas, "
           "one per GPU, and this process serves the page", "local", ("STUDIO_ENGINE",), choices=ENGINES,
           group=RAY_GROUP),
    Option("--ray-address", "with --engine ray: the cluster to join (the head's host:6379, or auto for the one "
           "`ray start` runs here); without it a cluster running here is joined, or one starts here", None, ("STUDIO_RAY_ADDRESS",), group=RAY_GROUP),
    Option("--replicas", "with --engine ray: how many replicas", None, ("STUDIO_REPLICAS",), parse=positive_int,
           group=RAY_GROUP, default_text="one per GPU of the cluster, 1 without GPUs"),
    Option("--max-replicas", "with --engine ray: let Serve add replicas under load, up to this many "
           "(--replicas stay warm)", None, ("STUDIO_MAX_REPLICAS",), parse=positive_int, group=RAY_GROUP),
    Option("--gpus-per-replica", "with --engine ray: GPUs each replica takes (0.5 puts two replicas on one GPU)",
           None, ("STUDIO_GPUS_PER_REPLICA",), parse=positive_float, group=RAY_GROUP,
           default_text="1 on a cluster with GPUs, else none"),
    Option("--cpus-per-replica", "with --engine ray: CPU cores each replica takes (its torch threads: Ray sets "
           "OMP_NUM_THREADS from it)", None, ("STUDIO_CPUS_PER_REPLICA",), parse=positive_int, group=RAY_GROUP,
           default_text="1 with GPUs; on a CPU cluster its cores shared out among the replicas"),
)
BY_DEST = {option.dest: option for option in OPTIONS}
RAY_FLAGS = tuple(o.dest for o in OPTIONS if o.group == RAY_GROUP and o.dest != "engine")


def default(dest: str) -> Any:
    """An option's declared default (what StudioConfig and PageOptions start from)."""
    return BY_DEST[dest].default


def parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The studio's command line, from the table."""
    environ = os.environ if environ is None else environ
    p = argparse.ArgumentParser(description="studio: text-to-image in the browser")
    groups: dict[str, Any] = {"": p}
    for option in OPTIONS:
        if option.group not in groups:
            groups[option.group] = p.add_argument_group(option.group)
        option.add_to(groups[option.group], environ)
    return p


def default_text(option: Option) -> str:
    if option.default_text:
        return option.default_text
    if option.switch:
        return "off"
    return "none" if option.default is None else f"`{option.default}`"


def flags_markdown() -> str:
    """The flags tables of docs/reference.md, one per group as `--help` shows them."""
    parts = []
    for group in dict.fromkeys(option.group for option in OPTIONS):
        lines = [f"### {group[0].upper()}{group[1:]}\n" if group else "",
                 "| flag | env variable | default | meaning |", "|---|---|---|---|"]
        for option in (o for o in OPTIONS if o.group == group):
            shown = option.flag
            if option.choices:
                shown += " {" + ",".join(option.choices) + "}"
            elif not option.switch:
                shown += f" {option.metavar or option.dest.upper()}"
            switch = "=1" if option.switch else ""
            env = ", ".join(f"`{name}{switch}`" for name in option.env)
            lines.append(f"| `{shown}` | {env} | {default_text(option)} | {option.help.replace('|', chr(92) + '|')} |")
        parts.append("\n".join(line for line in lines if line))
    return "\n\n".join(parts)
