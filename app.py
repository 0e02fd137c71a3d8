"""Start the studio: parse flags, build the engine and the page, launch. Nothing else lives here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from studio import options  # the flags, declared once; imports neither torch nor gradio
from studio.options import AUTO_MODEL, LOCAL_MAX_COST, SHARED_MAX_COST

if TYPE_CHECKING:
    from studio import StudioConfig

log = logging.getLogger("studio")


def parser() -> argparse.ArgumentParser:
    """The command line, generated from the server-options table (studio/options.py)."""
    return options.parser()


def build_engine(args: argparse.Namespace, config: "StudioConfig"):
    """The engine the page drives: a Studio here, or Ray Serve replicas of it (--engine ray)."""
    from studio import Studio
    from studio.errors import InvalidValue

    if args.engine == "local":
        stray = [name for name in options.RAY_FLAGS if getattr(args, name) is not None]
        if stray:
            flag = "--" + stray[0].replace("_", "-")
            raise InvalidValue(flag, getattr(args, stray[0]), f"used with --engine ray only ({flag} names replicas)")
        return Studio(config)
    from studio.engine.cluster import ClusterOptions, start_cluster

    cluster = ClusterOptions(args.ray_address, args.replicas, args.max_replicas, args.gpus_per_replica,
                             args.cpus_per_replica)
    # Each replica loads the starting model before it takes requests; "auto" is picked by the page's
    # warm-up once the replicas' device is known (and loaded on the first replica it reaches).
    return start_cluster(config, cluster, warm_model=None if args.model == AUTO_MODEL else args.model)


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


def shared(args: argparse.Namespace) -> bool:
    """Can others reach this studio? Then it is run as a shared one (see --allow-any-path)."""
    from studio.web.visitors import is_shared

    return is_shared(args.host, bool(args.share), bool(os.environ.get("SPACE_ID")))


def forwarded(args: argparse.Namespace) -> str:
    """Whose X-Forwarded-For names a visitor (studio/web/visitors.py)."""
    from studio.web.visitors import forwarding

    return forwarding(bool(os.environ.get("SPACE_ID")), bool(args.share))


def config_from(args: argparse.Namespace) -> "StudioConfig":
    """The engine's settings from the flags, declared once (StudioConfig)."""
    from studio import StudioConfig
    from studio.models import resolve_model

    start = None if args.model == AUTO_MODEL else resolve_model(args.model)  # auto: a preset
    roots = None if args.allow_any_path or not shared(args) else [args.models_dir, args.loras_dir,
                                                                  args.controlnets_dir, args.upscalers_dir,
                                                                  args.embeddings_dir] + (
        [start.ref] if start is not None and start.kind in ("folder", "single_file") else [])
    max_cost = float(args.max_cost) if args.max_cost else SHARED_MAX_COST if shared(args) else LOCAL_MAX_COST
    return StudioConfig(device=args.device, dtype=args.dtype, cache_size=args.cache_size,
                        allow_pickle=args.allow_pickle, preview_interval_s=1.0 / args.preview_fps,
                        offload=args.offload, drop_t5=args.drop_t5, quantize=args.quantize,
                        models_dir=args.models_dir, loras_dir=args.loras_dir, controlnets_dir=args.controlnets_dir,
                        upscalers_dir=args.upscalers_dir, wildcards_dir=args.wildcards_dir,
                        embeddings_dir=args.embeddings_dir,
                        allowed_roots=roots, max_cost=max_cost)


def api_options(args: argparse.Namespace) -> dict:
    """Whether and for whom the A1111 API is served: its users from --api-auth (else --auth); a studio
    others can reach without them answers every API call with why. (On ZeroGPU its calls ask for GPU
    time through the same service as the page's.)"""
    from studio.errors import StudioError
    from studio.web.sdapi.routes import parse_credentials

    try:
        credentials = parse_credentials(args.api_auth) or (dict([args.auth]) if args.auth else None)
    except StudioError as exc:
        sys.exit(f"error: {exc}")
    refusal = None
    if shared(args) and credentials is None:
        refusal = ("The A1111 API of a studio others can reach needs credentials: start it with --api-auth "
                   "user:password (or --auth).")
    return {"api": not args.no_api, "api_credentials": credentials, "api_refusal": refusal}


def main(argv: list[str] | None = None) -> None:
    # Before anything imports torch or huggingface_hub: a Space's storage defaults (HF_HOME and the
    # outputs on /data when it has persistent storage) and, on ZeroGPU, `spaces` (which must patch
    # torch.cuda before torch is used). studio.hosting itself imports neither.
    from studio import hosting

    built_cache = hosting.hub_cache()  # where a Space's build preloads its models, before HF_HOME moves
    for name, value in hosting.space_defaults().items():
        os.environ.setdefault(name, value)
    preloaded = hosting.link_preloaded(built_cache, hosting.hub_cache()) if os.environ.get("SPACE_ID") else []
    zero_gpu = hosting.import_spaces_first()
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if preloaded:
        logging.getLogger("studio").info("The Space's preloaded models, found in the build's cache: %s",
                                         ", ".join(preloaded))
    from studio.errors import StudioError
    from studio.outputs import OutputFolder
    from PIL import Image

    from studio.web import PageOptions, Warmup, build_ui, limits
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
                                                         delete_cache=limits.cache_sweep(shared(args)),
                                                         **api_options(args)))
    # Nothing is served by path but Gradio's own files: results reach the page as copies in Gradio's
    # cache (named by content). Pictures are never decoded past the studio's pixel limit.
    Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS // 2  # PIL refuses twice its limit (it only warns below)
    # Bodies, uploads and sessions bounded before any check (studio/web/limits.py): a cap per route in
    # front of the app, Gradio's own file cap, and on a shared studio an upload allowance per visitor,
    # fewer sessions forgotten sooner.
    bounds = limits.launch_options(demo.studio_parts.app_kwargs, shared(args), forwarded(args))
    stop_on_sigterm()  # after the engine: Ray's driver puts its own handler in, which aborted the process
    try:
        demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=args.auth,
                    enable_monitoring=False if shared(args) else None,
                    **{**demo.studio_parts.launch_kwargs, **bounds})  # the page's CSS, scripts and guards
    finally:
        close = getattr(studio, "close", None)  # the Ray engine leaves its cluster (and stops one it started)
        if callable(close):
            close()


def stop_on_sigterm() -> None:
    """SIGTERM (systemd, Docker, Kubernetes, `kill`) closes the server as Ctrl+C does: Gradio ends its
    server, the engine is closed, and the process exits 0."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    main()
