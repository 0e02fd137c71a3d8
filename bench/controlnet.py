"""Benchmark: what a ControlNet unit and an image prompt cost per step, and that idle ones cost nothing.

A mid-size random-weight SD-1.5-shaped model (bench/previews.py's) and a ControlNet made from its UNet
(zero convolutions given random weights, so it steers), saved as folders and loaded through the
engine. Side by side in interleaved rounds: no unit, one unit, two units, one unit of weight 0, and
one unit active for the second half of the steps only; one image prompt (an IP-Adapter made for the
same UNet, loaded from its .safetensors file) and one at weight 0. The time per step is the difference
to the plain run divided by the steps; an idle unit or prompt (weight 0) should cost nothing (skipped,
not multiplied by zero) and a half-range unit about half.

    python3 bench/controlnet.py                  # 5 rounds, 10 steps, 384 px
    python3 bench/controlnet.py --rounds 3 --steps 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from previews import build_mid_pipeline  # noqa: E402
from studio import GenerationRequest, Studio  # noqa: E402
from studio.tiny import TINY_SEED  # noqa: E402


def save_models(folder: Path) -> tuple[Path, Path, Path]:
    from diffusers import ControlNetModel

    from studio.control.ip_adapter import random_adapter, save_adapter

    pipe = build_mid_pipeline()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 1)
        net = ControlNetModel.from_unet(pipe.unet)
        with torch.no_grad():
            for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
                conv.weight.normal_(0.0, 0.05)
    pipe.save_pretrained(folder / "model")
    net.save_pretrained(folder / "controlnet")
    save_adapter(random_adapter(pipe.unet), folder / "ip-adapter.safetensors")
    return folder / "model", folder / "controlnet", folder / "ip-adapter.safetensors"


def control_picture(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), (90, 90, 90))
    ImageDraw.Draw(image).rectangle((size // 5, size // 5, size * 3 // 5, size * 4 // 5), fill=(240, 240, 240))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "controlnet.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    model, controlnet, adapter = save_models(work)
    studio = Studio(device="cpu", cache_size=1)
    picture = control_picture(args.size)

    def unit(**fields) -> dict:
        return {"image": picture, "module": "canny", "model": str(controlnet), **fields}

    def prompt(weight: float = 1.0) -> dict:
        return {"image": picture, "model": str(adapter), "weight": weight}

    configs = {  # each: (ControlNet units, image prompts)
        "no unit": ([], []),
        "1 unit": ([unit()], []),
        "2 units": ([unit(), unit(module="blur_gaussian")], []),
        "1 unit, weight 0": ([unit(weight=0.0)], []),
        "1 unit, second half only": ([unit(guidance_start=0.5)], []),
        "1 image prompt": ([], [prompt()]),
        "1 image prompt, weight 0": ([], [prompt(0.0)]),
    }

    def run(config: tuple, seed: int) -> float:
        request = GenerationRequest(model=str(model), prompt="a lighthouse", steps=args.steps, width=args.size,
                                    height=args.size, sampler="Euler", seed=seed, preview="none",
                                    controlnets=config[0], image_prompts=config[1])
        start = time.perf_counter()
        studio.run(request)
        return time.perf_counter() - start

    for config in configs.values():
        run(config, 0)  # warm-up: loads the model, the ControlNet and the adapter, picks kernels
    times: dict[str, list[float]] = {name: [] for name in configs}
    for r in range(args.rounds):
        for name, config in configs.items():
            times[name].append(run(config, r + 1))
    plain = statistics.median(times["no unit"])
    table = {}
    for name, values in times.items():
        median = statistics.median(values)
        table[name] = {"median_s": round(median, 3),
                       "vs_no_unit": round(statistics.median(t / p for t, p in zip(values, times["no unit"])), 3),
                       "controlnet_s_per_step": round((median - plain) / args.steps, 4)}
        print(f"{name:28s} {median:7.2f} s  x{table[name]['vs_no_unit']:.3f}  "
              f"added {table[name]['controlnet_s_per_step'] * 1000:6.1f} ms/step", flush=True)
    Path(args.out).write_text(json.dumps({"settings": f"{args.size} px, {args.steps} steps, Euler, CPU "
                                                      f"{torch.get_num_threads()} threads, {args.rounds} rounds",
                                          "results": table}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
