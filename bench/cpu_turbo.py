"""Benchmark: what a CPU host (a free Space: 2 vCPU, 16 GB) can do with Turbo models.

Full-size SD-Turbo-shaped (SD 2.1-base configuration) and SDXL-Turbo-shaped pipelines with random
weights (real configurations, no download), saved as diffusers folders and loaded through the engine
as an artist's folder would be. Each generation is 512x512, 1 step, CFG 0, timed end to end through
the engine (prompt to PNG bytes), per configuration side by side in interleaved rounds (A B C ... A B C
...), each round with a new prompt (the engine caches encoded prompts; a new prompt is what a user
sends). Configurations: fp32 vs bf16, full VAE vs TAESD (Fast decode), the engine's channels-last
layout undone, and a bare diffusers call with the same settings (`pipe.to(torch.bfloat16)` and a
call, as its docs show). Also: when the first live preview arrives.

    python3 bench/cpu_turbo.py                        # both models, 3 rounds
    python3 bench/cpu_turbo.py --models sd-turbo --rounds 5
    python3 bench/cpu_turbo.py --smoke                # tiny shapes: checks the script in seconds

Memory: SD-Turbo needs about 14 GB for all its configurations at once, SDXL-Turbo about 16 GB for
its bf16 ones (its fp32 engine would need 13 GB more: not run side by side on a 24 GB machine).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from studio import GenerationRequest, Preview, Result, Studio  # noqa: E402
from studio.devices import native_bf16  # noqa: E402
from studio.metadata import png_bytes  # noqa: E402
from studio.tiny import TINY_SEED, tiny_tokenizer  # noqa: E402

PROMPTS = ["a lighthouse on a cliff at dusk, oil painting", "a red fox in fresh snow, photograph",
           "a bowl of ramen, studio light", "an old map of an imaginary island", "a robot tending a garden",
           "a foggy forest road at dawn", "a glass teapot with blooming tea", "a city skyline in rain at night"]


def clip_text(hidden: int, layers: int, heads: int, projection: int | None = None, act: str = "gelu"):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers,
                            num_attention_heads=heads, vocab_size=49408, max_position_embeddings=77,
                            hidden_act=act, projection_dim=projection or hidden, bos_token_id=0, eos_token_id=2,
                            pad_token_id=1)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def build_sd_turbo(smoke: bool):
    """SD-Turbo: the SD 2.1-base UNet (865 M parameters), OpenCLIP ViT-H's text tower, SD's VAE."""
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    wide = (32, 64, 64, 64) if smoke else (320, 640, 1280, 1280)
    unet = UNet2DConditionModel(
        sample_size=64, block_out_channels=wide, layers_per_block=1 if smoke else 2,
        attention_head_dim=(2, 4, 4, 4) if smoke else (5, 10, 20, 20), cross_attention_dim=64 if smoke else 1024,
        use_linear_projection=True,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    vae = AutoencoderKL(block_out_channels=(32, 32, 32, 32) if smoke else (128, 256, 512, 512), layers_per_block=2,
                        latent_channels=4, sample_size=512, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4)
    text = clip_text(64, 2, 2) if smoke else clip_text(1024, 23, 16)
    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                timestep_spacing="trailing")
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tiny_tokenizer(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def build_sdxl_turbo(smoke: bool):
    """SDXL-Turbo: SDXL's UNet (2.6 B parameters), CLIP-L and OpenCLIP bigG text encoders, SDXL's VAE."""
    from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline,
                           UNet2DConditionModel)

    text, text2 = (clip_text(32, 2, 2), clip_text(32, 2, 2, projection=32)) if smoke else (
        clip_text(768, 12, 12, act="quick_gelu"), clip_text(1280, 32, 20, projection=1280))
    unet = UNet2DConditionModel(
        sample_size=64, block_out_channels=(32, 64, 64) if smoke else (320, 640, 1280), layers_per_block=2,
        transformer_layers_per_block=(1, 1, 1) if smoke else (1, 2, 10),
        attention_head_dim=(2, 4, 4) if smoke else (5, 10, 20), cross_attention_dim=64 if smoke else 2048,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8 if smoke else 256,
        projection_class_embeddings_input_dim=(32 + 6 * 8) if smoke else 2816,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(block_out_channels=(32, 32, 32, 32) if smoke else (128, 256, 512, 512), layers_per_block=2,
                        latent_channels=4, sample_size=1024, scaling_factor=0.13025,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                timestep_spacing="trailing")
    return StableDiffusionXLPipeline(unet=unet, vae=vae, text_encoder=text, text_encoder_2=text2,
                                     tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), scheduler=scheduler)


BUILDERS = {"sd-turbo": ("sd15", build_sd_turbo), "sdxl-turbo": ("sdxl", build_sdxl_turbo)}


def save_model(name: str, folder: Path, smoke: bool) -> tuple[Path, Path, str]:
    """The model's diffusers folder and a TAESD folder (random weights, TAESD's own shape)."""
    from diffusers import AutoencoderTiny

    family, build = BUILDERS[name]
    target, taesd = folder / name, folder / f"{name}-taesd"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        pipe = build(smoke)
        pipe.save_pretrained(target)  # fp32: loaded as each configuration's precision asks
        AutoencoderTiny(**({"encoder_block_out_channels": (16,) * 4, "decoder_block_out_channels": (16,) * 4}
                           if smoke else {})).save_pretrained(taesd)
    del pipe
    return target, taesd, family


def engine_run(studio: Studio, request: GenerationRequest) -> tuple[float, float | None]:
    """Seconds from the request to PNG bytes, and to the first live preview."""
    start = time.perf_counter()
    first_preview = None
    result = None
    for event in studio.generate(request).events():
        if isinstance(event, Preview) and first_preview is None:
            first_preview = time.perf_counter() - start
        elif isinstance(event, Result):
            result = event
    assert result is not None, "the generation gave no result"
    png_bytes(result.images[0], result.infotexts[0], result.request.record())
    return time.perf_counter() - start, first_preview


def bare_run(pipe: Any, prompt: str, seed: int) -> float:
    start = time.perf_counter()
    image = pipe(prompt, num_inference_steps=1, guidance_scale=0.0, width=512, height=512,
                 generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    image.save(io.BytesIO(), format="PNG")
    return time.perf_counter() - start


def contiguous(studio: Studio, model: str) -> None:
    """Undo the engine's channels-last layout (to measure what it gains)."""
    loaded = studio.load(model)
    for module in (loaded.pipe.unet, loaded.pipe.vae):
        module.to(memory_format=torch.contiguous_format)


def configurations(name: str, model: str, taesd: str, family: str, smoke: bool) -> dict[str, Callable[[str, int], Any]]:
    from diffusers import DiffusionPipeline

    def engine(dtype: str, layout: str = "") -> Studio:
        studio = Studio(device="cpu", dtype=dtype, cache_size=1, taesd_sources={family: taesd})
        studio.load(model)
        if layout == "contiguous":
            contiguous(studio, model)
        return studio

    def request(prompt: str, seed: int, fast: bool) -> GenerationRequest:
        return GenerationRequest(model=model, prompt=prompt, steps=1, cfg_scale=0.0, width=512, height=512,
                                 sampler="Euler a", seed=seed, fast_decode=fast, preview="latent2rgb")

    configs: dict[str, Callable[[str, int], Any]] = {}
    dtypes = ["bf16"] if name == "sdxl-turbo" and not smoke else ["fp32", "bf16"]
    for dtype in dtypes:
        studio = engine(dtype)
        for fast in (False, True):
            configs[f"engine {dtype} {'TAESD' if fast else 'VAE'}"] = (
                lambda prompt, seed, s=studio, f=fast: engine_run(s, request(prompt, seed, f)))
    if name != "sdxl-turbo" or smoke:  # a third SDXL copy does not fit beside the others in 24 GB
        plain = engine("bf16", "contiguous")
        configs["engine bf16 VAE, not channels-last"] = (
            lambda prompt, seed: engine_run(plain, request(prompt, seed, False)))
    bare = DiffusionPipeline.from_pretrained(model, torch_dtype=torch.bfloat16)
    bare.set_progress_bar_config(disable=True)
    configs["bare diffusers bf16 VAE"] = lambda prompt, seed: (bare_run(bare, prompt, seed), None)
    return configs


def bench_model(name: str, folder: Path, rounds: int, smoke: bool) -> dict:
    model, taesd, family = save_model(name, folder, smoke)
    configs = configurations(name, str(model), str(taesd), family, smoke)
    for run in configs.values():  # warm-up: first calls allocate and pick kernels
        run("warm-up", 0)
    times: dict[str, list[float]] = {label: [] for label in configs}
    previews: dict[str, list[float]] = {label: [] for label in configs}
    for r in range(rounds):
        for label, run in configs.items():
            seconds, preview = run(PROMPTS[r % len(PROMPTS)] + f" #{r}", r + 1)
            times[label].append(seconds)
            if preview is not None:
                previews[label].append(preview)
    base = "engine bf16 VAE"
    table = {}
    for label in configs:
        table[label] = {
            "median_s": round(statistics.median(times[label]), 3),
            "vs_engine_bf16_vae": round(statistics.median(t / b for t, b in zip(times[label], times[base])), 3),
            "first_preview_s": round(statistics.median(previews[label]), 3) if previews[label] else None,
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="sd-turbo,sdxl-turbo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--smoke", action="store_true", help="tiny shapes: check the script, measure nothing")
    parser.add_argument("--out", default=None, help="default bench/results/cpu-turbo.json (not written with --smoke)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                          "native_bf16": native_bf16(), "torch": torch.__version__},
              "settings": "512x512, 1 step, CFG 0, Euler a, latent2rgb previews, end to end to PNG bytes",
              "models": {}}
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        for name in args.models.split(","):
            print(f"== {name}", flush=True)
            table = bench_model(name, Path(tmp), args.rounds, args.smoke)
            report["models"][name] = table
            for label, row in table.items():
                preview = f"  first preview {row['first_preview_s']:.2f} s" if row["first_preview_s"] else ""
                print(f"{label:36s} {row['median_s']:7.2f} s  x{row['vs_engine_bf16_vae']:.2f}{preview}", flush=True)
    if not args.smoke:
        out = Path(args.out or Path(__file__).resolve().parent / "results" / "cpu-turbo.json")
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
