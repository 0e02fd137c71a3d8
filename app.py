"""Start the studio: parse flags, build the engine and the page, launch. Nothing else lives here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio import StudioConfig

log = logging.getLogger("studio")


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
    from studio.previews import METHOD_NAMES

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


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(description="studio: text-to-image in the browser")
    p.add_argument("--model", default=env("STUDIO_MODEL", AUTO_MODEL),
                   help="preset name (sd15, sdxl, sd-turbo, sdxl-turbo, flux-schnell, tiny, ...), hub id, "
                        "diffusers folder or .safetensors file (default: auto = sd15 on a GPU, sd-turbo on a "
                        "CPU; env STUDIO_MODEL)")
    p.add_argument("--host", default=env("STUDIO_HOST", env("GRADIO_SERVER_NAME", "127.0.0.1")),
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface; env STUDIO_HOST)")
    p.add_argument("--port", type=port, default=int(env("STUDIO_PORT", env("GRADIO_SERVER_PORT", "7860"))))
    p.add_argument("--share", action="store_true", help="create a public Gradio link (use --auth with it)")
    p.add_argument("--auth", type=parse_auth, help="user:password required to open the page")
    p.add_argument("--device", default=env("STUDIO_DEVICE", "auto"), help="auto, cuda, cuda:N, mps or cpu")
    p.add_argument("--dtype", default=env("STUDIO_DTYPE", "auto"), help="auto, fp16, bf16 or fp32")
    p.add_argument("--cache-size", type=positive_int, default=int(env("STUDIO_CACHE_SIZE", "2")),
                   help="how many models stay loaded (LRU)")
    p.add_argument("--queue-size", type=positive_int, default=int(env("STUDIO_QUEUE_SIZE", "16")),
                   help="how many requests may wait before new ones are told the studio is busy")
    p.add_argument("--max-queued", type=positive_int, default=int(env("STUDIO_MAX_QUEUED", "2")),
                   help="how many requests one visitor may have waiting behind their running one (default 2)")
    p.add_argument("--preview", type=preview_method, default=env("STUDIO_PREVIEW", "auto"),
                   help="live preview method: auto (TAESD on a GPU, else latent2rgb), latent2rgb, taesd, vae, none")
    p.add_argument("--preview-fps", type=fps, default=float(env("STUDIO_PREVIEW_FPS", "10")),
                   help="most previews a second sent to the page (default 10)")
    p.add_argument("--outputs", default=env("STUDIO_OUTPUTS", "outputs"),
                   help="folder for finished PNGs with metadata, in date sub-folders (default: outputs)")
    p.add_argument("--outputs-max-gb", type=positive_float, default=env("STUDIO_OUTPUTS_MAX_GB"),
                   help="most GB of PNGs the outputs folder keeps: past it, the oldest images are deleted "
                        "(default: no limit; 5 on a Space with persistent storage)")
    p.add_argument("--no-outputs", action="store_true", default=env("STUDIO_NO_OUTPUTS", "") not in ("", "0"),
                   help="keep nothing on disk (images go to a temporary folder), e.g. on a Space")
    p.add_argument("--models-dir", default=env("STUDIO_MODELS_DIR", "models"),
                   help="folder whose .safetensors checkpoints and diffusers folders are listed in the page "
                        "(default: models)")
    p.add_argument("--loras-dir", default=env("STUDIO_LORAS_DIR", "loras"),
                   help="folder of LoRA .safetensors files, used by name: <lora:name:0.8> (default: loras)")
    p.add_argument("--controlnets-dir", default=env("STUDIO_CONTROLNETS_DIR", "controlnets"),
                   help="folder of ControlNet and IP-Adapter files (.safetensors, or diffusers folders), used by "
                        "name as A1111's models/ControlNet (default: controlnets)")
    p.add_argument("--api-auth", default=env("STUDIO_API_AUTH"), metavar="USER:PASS[,USER2:PASS2]",
                   help="HTTP Basic users of the A1111 API (/sdapi/v1), as A1111's --api-auth; without it the "
                        "page's --auth is used. A studio others can reach serves the API only with one of them")
    p.add_argument("--no-api", action="store_true", help="do not serve the A1111 API (/sdapi/v1)")
    p.add_argument("--gpu-duration", type=positive_int, default=int(env("STUDIO_GPU_DURATION", "120")),
                   help="on a ZeroGPU Space: most seconds of GPU one Generate asks for; each asks what its "
                        "steps, size and batch need, up to this (default 120)")
    p.add_argument("--allow-any-path", action="store_true",
                   help="let requests name model and LoRA files anywhere on this machine; by default a studio "
                        "reachable by others (--share, or a --host other than 127.0.0.1) only opens files in "
                        "--models-dir, --loras-dir, --controlnets-dir and the --model you started it with")
    p.add_argument("--max-cost", type=positive_float, default=env("STUDIO_MAX_COST"),
                   help=f"most megapixel-steps one Generate may ask for (width x height x steps x batch size x "
                        f"batch count, hires pass included; a 512 px 25-step image is 6.6). Default: {LOCAL_MAX_COST:g} "
                        f"locally, {SHARED_MAX_COST:g} when others can reach the studio")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow pickle checkpoints (.ckpt/.pt/.bin): they can run arbitrary code")
    p.add_argument("--offload", choices=("none", "model", "sequential"), default=env("STUDIO_OFFLOAD", "none"),
                   help="keep weights on the CPU between uses to fit big models on a smaller CUDA GPU: model "
                        "(a component at a time) or sequential (layer by layer, slowest); env STUDIO_OFFLOAD")
    p.add_argument("--quantize", choices=("none", "int8", "fp8"), default=env("STUDIO_QUANTIZE", "none"),
                   help="load the denoiser quantized (torchao, requirements-quant.txt): int8 weight-only (any "
                        "device, about half of bf16) or fp8 (CUDA GPUs with fp8); env STUDIO_QUANTIZE")
    p.add_argument("--drop-t5", action="store_true", default=env("STUDIO_DROP_T5", "") not in ("", "0"),
                   help="load SD3 models without their T5 text encoder (about 9 GB less; prompts read by CLIP only)")
    ray = p.add_argument_group("several GPUs: Ray Serve replicas behind this page (requirements-ray.txt)")
    ray.add_argument("--engine", choices=("local", "ray"), default=env("STUDIO_ENGINE", "local"),
                     help="local: the engine runs in this process on one device (default); ray: it runs as Ray "
                          "Serve replicas, one per GPU, and this process serves the page")
    ray.add_argument("--ray-address", default=env("STUDIO_RAY_ADDRESS"),
                     help="with --engine ray: the cluster to join (host:6379, ray://host:10001 or auto); "
                          "without it a local cluster starts on this machine")
    ray.add_argument("--replicas", type=positive_int, default=env("STUDIO_REPLICAS"),
                     help="with --engine ray: how many replicas (default: one per GPU of the cluster, 1 without GPUs)")
    ray.add_argument("--max-replicas", type=positive_int, default=env("STUDIO_MAX_REPLICAS"),
                     help="with --engine ray: let Serve add replicas under load, up to this many "
                          "(--replicas stay warm)")
    ray.add_argument("--gpus-per-replica", type=positive_float, default=env("STUDIO_GPUS_PER_REPLICA"),
                     help="with --engine ray: GPUs each replica takes (default 1 on a cluster with GPUs, else none; "
                          "0.5 puts two replicas on one GPU)")
    return p


RAY_FLAGS = ("ray_address", "replicas", "max_replicas", "gpus_per_replica")


def build_engine(args: argparse.Namespace, config: "StudioConfig"):
    """The engine the page drives: a Studio here, or Ray Serve replicas of it (--engine ray)."""
    from studio import Studio
    from studio.errors import InvalidValue

    if args.engine == "local":
        stray = [name for name in RAY_FLAGS if getattr(args, name) is not None]
        if stray:
            flag = "--" + stray[0].replace("_", "-")
            raise InvalidValue(flag, getattr(args, stray[0]), f"used with --engine ray only ({flag} names replicas)")
        return Studio(config)
    from studio.engine.cluster import ClusterOptions, start_cluster

    options = ClusterOptions(args.ray_address, args.replicas, args.max_replicas, args.gpus_per_replica)
    # Each replica loads the starting model before it takes requests; "auto" is picked by the page's
    # warm-up once the replicas' device is known (and loaded on the first replica it reaches).
    return start_cluster(config, options, warm_model=None if args.model == AUTO_MODEL else args.model)


LOOPBACK = ("127.0.0.1", "localhost", "::1")
AUTO_MODEL = "auto"
# --model auto: the starting model by device. A CPU gets SD-Turbo, 1 step at 512 px (seconds, not
# minutes, an image); when it cannot be loaded (not cached, no network) the studio falls back to tiny.
AUTO_MODELS = {"cuda": "sd15", "mps": "sd15", "cpu": "sd-turbo"}


def starting_model(requested: str, device_kind: str) -> tuple[str, str]:
    """The model to start on, and why (for the page) when the studio chose it."""
    if requested != AUTO_MODEL:
        return requested, ""
    model = AUTO_MODELS[device_kind]
    if device_kind != "cpu":
        return model, ""
    return model, (f"No GPU here, so the studio chose **{model}**, made for few steps (1 step at 512 px: "
                   f"seconds an image on a CPU). Pick another model above, or start with --model.")
LOCAL_MAX_COST = 20_000.0  # megapixel-steps: e.g. 8 SDXL images x 150 steps x a batch count of 10
SHARED_MAX_COST = 600.0  # about 20 SDXL images at 30 steps per click, for visitors of a public link
MAX_UPLOAD = "50mb"  # init images, masks and PNG Info uploads; Gradio refuses bigger files itself


def shared(args: argparse.Namespace) -> bool:
    """Can others reach this studio? Then it is run as a shared one (see --allow-any-path)."""
    return bool(args.share) or args.host not in LOOPBACK


def config_from(args: argparse.Namespace) -> "StudioConfig":
    """The engine's settings from the flags, declared once (StudioConfig)."""
    from studio import StudioConfig
    from studio.models import resolve_model

    start = None if args.model == AUTO_MODEL else resolve_model(args.model)  # auto: a preset
    roots = None if args.allow_any_path or not shared(args) else [args.models_dir, args.loras_dir,
                                                                  args.controlnets_dir] + (
        [start.ref] if start is not None and start.kind in ("folder", "single_file") else [])
    max_cost = float(args.max_cost) if args.max_cost else SHARED_MAX_COST if shared(args) else LOCAL_MAX_COST
    return StudioConfig(device=args.device, dtype=args.dtype, cache_size=args.cache_size,
                        allow_pickle=args.allow_pickle, preview_interval_s=1.0 / args.preview_fps,
                        offload=args.offload, drop_t5=args.drop_t5, quantize=args.quantize,
                        models_dir=args.models_dir, loras_dir=args.loras_dir, controlnets_dir=args.controlnets_dir,
                        allowed_roots=roots, max_cost=max_cost)


def api_options(args: argparse.Namespace, zero_gpu: bool) -> dict:
    """Whether and for whom the A1111 API is served: its users from --api-auth (else --auth); a studio
    others can reach without them, or on ZeroGPU (GPU time is asked for by the page's own function),
    answers every API call with why."""
    from studio.errors import StudioError
    from studio.ui.a1111.routes import parse_credentials

    try:
        credentials = parse_credentials(args.api_auth) or (dict([args.auth]) if args.auth else None)
    except StudioError as exc:
        sys.exit(f"error: {exc}")
    refusal = None
    if zero_gpu:
        refusal = "The A1111 API is not served on ZeroGPU: GPU time is asked for by the page; use /generate."
    elif shared(args) and credentials is None:
        refusal = ("The A1111 API of a studio others can reach needs credentials: start it with --api-auth "
                   "user:password (or --auth).")
    return {"api": not args.no_api, "api_credentials": credentials, "api_refusal": refusal}


def main(argv: list[str] | None = None) -> None:
    # Before anything imports torch or huggingface_hub: a Space's storage defaults (HF_HOME and the
    # outputs on /data when it has persistent storage) and, on ZeroGPU, `spaces` (which must patch
    # torch.cuda before torch is used). studio.hosting itself imports neither.
    from studio import hosting

    for name, value in hosting.space_defaults().items():
        os.environ.setdefault(name, value)
    zero_gpu = hosting.import_spaces_first()
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from studio.errors import StudioError
    from studio.outputs import OutputFolder
    from PIL import Image

    from studio.ui import PageOptions, Warmup, build_ui
    from studio.validation import MAX_INPUT_PIXELS

    try:
        if zero_gpu and args.engine != "local":
            raise StudioError("--engine ray does not run on ZeroGPU: a Space's GPU is lent per call to this process")
        studio = build_engine(args, config_from(args))
    except StudioError as exc:
        sys.exit(f"error: {exc}")
    if args.share and not args.auth:
        log.warning("--share without --auth: anyone with the link can use this machine's GPU. "
                    "Add --auth user:password.")
    # ZeroGPU: the starting model loads now, in this thread (the only one `spaces` emulates CUDA in),
    # onto `cuda`; spaces packs it at launch and moves it onto the GPU of each GPU call.
    model, why = starting_model(args.model, studio.device.kind)
    warmup = Warmup(studio, model, why).start(background=not zero_gpu)
    outputs = OutputFolder(None if args.no_outputs else args.outputs, max_bytes=int(args.outputs_max_gb * 2**30)
                           if args.outputs_max_gb else None)
    demo = build_ui(studio, warmup, outputs, PageOptions(queue_size=args.queue_size, max_queued=args.max_queued,
                                                         preview_method=args.preview,
                                                         fast_decode=studio.device.kind == "cpu",
                                                         gpu_duration_s=args.gpu_duration,
                                                         **api_options(args, zero_gpu)))
    # Nothing is served by path but Gradio's own files: results reach the page as copies in Gradio's
    # cache (named by content). Pictures are never decoded past the studio's pixel limit.
    Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS // 2  # PIL refuses twice its limit (it only warns below)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=args.auth,
                max_file_size=MAX_UPLOAD, enable_monitoring=False if shared(args) else None,
                **demo.studio_parts.launch_kwargs)  # the page's CSS and scripts, the guard in front of /cancel


if __name__ == "__main__":
    main()
