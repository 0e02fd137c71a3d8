"""Benchmark: what a model upscaler's pass costs against a diffusion step, the figure behind the cost
cap's MODEL_PASS_WORK (studio/upscalers/work.py: megapixel-steps per input megapixel of one pass).

Both sides are full-size networks with random weights (speed does not depend on the weights): an
ESRGAN x4 (RRDBNet, 64 filters, 23 blocks: 16.7M parameters, the architecture of RealESRGAN_x4plus and
4x-UltraSharp) on one tile as the studio runs it, and an SD 1.5-shaped UNet (860M parameters) for one
step at 512 px with CFG (a batch of 2): one megapixel-step is that step's time / 0.262. They run in
interleaved rounds in one process, the ratio taken round by round, so a noisy shared machine affects
both alike. Prints a table and writes JSON.

    python3 bench/upscalers.py                  # 3 rounds, fp32, on the CPU, a 128 px tile
    python3 bench/upscalers.py --device cuda --dtype fp16 --tile 512
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from studio.upscalers.library import spandrel  # noqa: E402
from studio.upscalers.work import MODEL_PASS_WORK  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
SD_STEP_MEGAPIXELS = 512 * 512 / 1e6


def esrgan(device: str, dtype: torch.dtype):
    spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(num_filters=64, num_blocks=23, scale=4).to(device, dtype).eval()


def sd15_unet(device: str, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    # SD 1.5's UNet config (runwayml/stable-diffusion-v1-5/unet/config.json), random weights.
    unet = UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
                                attention_head_dim=8)
    return unet.to(device, dtype).eval()


def timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=DTYPES)
    parser.add_argument("--tile", type=int, default=128, help="input pixels a tile's side (the studio: 128 on a CPU)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    upscaler, unet = esrgan(args.device, dtype), sd15_unet(args.device, dtype)
    tile = torch.rand(1, 3, args.tile, args.tile, device=args.device, dtype=dtype)
    latents = torch.randn(2, 4, 64, 64, device=args.device, dtype=dtype)
    text = torch.randn(2, 77, 768, device=args.device, dtype=dtype)
    with torch.inference_mode():
        upscaler(tile), unet(latents, 500, encoder_hidden_states=text)  # warm-up
        rounds = []
        for _ in range(args.rounds):
            tile_s = timed(lambda: upscaler(tile), args.device)
            step_s = timed(lambda: unet(latents, 500, encoder_hidden_states=text), args.device)
            per_input_mp = tile_s / (args.tile * args.tile / 1e6)
            per_mp_step = step_s / SD_STEP_MEGAPIXELS
            rounds.append({"tile_s": tile_s, "sd_step_s": step_s, "ratio": per_input_mp / per_mp_step})
    ratio = statistics.median(r["ratio"] for r in rounds)
    result = {"device": args.device, "dtype": args.dtype, "tile": args.tile, "cpu": platform.processor() or
              platform.machine(), "threads": torch.get_num_threads(), "rounds": rounds,
              "megapixel_steps_per_input_megapixel": ratio, "studio_assumes": MODEL_PASS_WORK}
    print(f"{'round':>5} {'ESRGAN x4 tile (s)':>19} {'SD 1.5 step, CFG (s)':>21} {'ratio':>7}")
    for k, r in enumerate(rounds):
        print(f"{k:>5} {r['tile_s']:>19.3f} {r['sd_step_s']:>21.3f} {r['ratio']:>7.2f}")
    print(f"one ESRGAN x4 pass over an input megapixel = {ratio:.2f} megapixel-steps (median); "
          f"the cost cap assumes {MODEL_PASS_WORK:g}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
