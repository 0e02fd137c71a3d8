"""Benchmark: what live previews on every step cost, and the engine's overhead over bare diffusers.

Runs on the CPU (or a GPU with --device) with a mid-size random-weight SD-1.5-shaped model (or,
with --family, a flow transformer shaped like FLUX.1-dev, FLUX.2 Klein 4B or Qwen-Image) whose steps
take roughly 0.2-1 s on a 2-core CPU. Every configuration runs in the same process, in
interleaved rounds (A B C ... A B C ...), and ratios are taken round by round against the baseline
measured in the same round, so a noisy shared machine affects both sides alike. Prints a table and
writes JSON.

    python3 bench/previews.py                      # default: 5 rounds, 10 steps, 384 px
    python3 bench/previews.py --rounds 3 --out bench/results.json
    python3 bench/previews.py --family flux        # flow matching: packed latents, 16 channels
    python3 bench/previews.py --family klein       # FLUX.2 Klein: 32 channels, batch-norm normalised, no CFG
    python3 bench/previews.py --family qwen_image  # Qwen-Image: 5-D video-VAE latents, real CFG (2 passes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from studio import GenerationRequest, Preview, Result, Studio  # noqa: E402
from studio.engine.prompt_plan import plan_prompts  # noqa: E402
from studio.families import family_of_pipeline  # noqa: E402
from studio.loading import call_parameters  # noqa: E402
from studio.samplers import make_scheduler, resolve  # noqa: E402
from studio.tiny import TINY_SEED, tiny_tokenizer  # noqa: E402


def build_mid_pipeline():
    """SD-1.5-shaped, random weights: 3-level UNet with attention, 8x VAE, 256-wide CLIP."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        unet = UNet2DConditionModel(
            block_out_channels=(96, 192, 192), layers_per_block=1, sample_size=64,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=256, attention_head_dim=8,
        )
        vae = AutoencoderKL(
            block_out_channels=(32, 64, 64, 64), layers_per_block=1, latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )
        text = CLIPTextModel(CLIPTextConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                                            num_attention_heads=4, vocab_size=1000, max_position_embeddings=77,
                                            bos_token_id=0, eos_token_id=2, pad_token_id=1))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1)
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text.eval(), tokenizer=tiny_tokenizer(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def build_mid_flux():
    """FLUX.1-dev-shaped, random weights: 2 double + 4 single blocks 256 wide, 16-channel 8x VAE, a
    256-wide T5 beside the CLIP, the guidance embedding, dev's dynamic-shift scheduler."""
    from diffusers import AutoencoderKL, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from studio.tiny_flow import _flux_scheduler, tiny_t5_tokenizer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=2, num_single_layers=4, attention_head_dim=64,
            num_attention_heads=4, joint_attention_dim=256, pooled_projection_dim=256, guidance_embeds=True,
            axes_dims_rope=(16, 24, 24),
        )
        vae = AutoencoderKL(
            block_out_channels=(32, 64, 64, 64), layers_per_block=1, latent_channels=16,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False,
        )
        text = CLIPTextModel(CLIPTextConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                                            num_attention_heads=4, vocab_size=1000, max_position_embeddings=77,
                                            bos_token_id=0, eos_token_id=2, pad_token_id=1))
        t5 = T5EncoderModel(T5Config(vocab_size=256, d_model=256, d_kv=32, d_ff=512, num_layers=4, num_heads=8,
                                     relative_attention_num_buckets=32, feed_forward_proj="gated-gelu"))
    return FluxPipeline(transformer=transformer, vae=vae, text_encoder=text.eval(), tokenizer=tiny_tokenizer(),
                        text_encoder_2=t5.eval(), tokenizer_2=tiny_t5_tokenizer(), scheduler=_flux_scheduler(True))


def build_mid_klein():
    """FLUX.2-[klein]-4B-shaped, random weights: 2 double + 4 single blocks 256 wide, distilled (no
    CFG), FLUX.2's 32-channel 8x VAE with random batch-norm statistics, tiny_klein's 36-layer Qwen3."""
    from studio.tiny_klein import build_tiny_klein

    return build_tiny_klein(blocks=(2, 4), heads=4, head_dim=64, vae_widths=(32, 64, 64, 64), vae_groups=32)


def build_mid_qwen():
    """Qwen-Image-shaped, random weights: 4 MMDiT blocks 256 wide (real CFG: two passes a step), a
    16-to-64-channel causal-3D VAE (16 latent channels, 8x), tiny_qwen's 2-layer Qwen2.5-VL."""
    from diffusers import AutoencoderKLQwenImage, QwenImagePipeline, QwenImageTransformer2DModel

    from studio.tiny_qwen import TEXT_WIDTH, _text_encoder, qwen_scheduler, tiny_qwen2_tokenizer

    tokenizer = tiny_qwen2_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        transformer = QwenImageTransformer2DModel(
            patch_size=2, in_channels=64, out_channels=16, num_layers=4, attention_head_dim=64,
            num_attention_heads=4, joint_attention_dim=TEXT_WIDTH, axes_dims_rope=(16, 24, 24),
        )
        vae = AutoencoderKLQwenImage(base_dim=16, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                                     temperal_downsample=[False, True, True])
        text = _text_encoder(tokenizer)
    return QwenImagePipeline(scheduler=qwen_scheduler(), vae=vae.eval(), text_encoder=text, tokenizer=tokenizer,
                             transformer=transformer.eval())


BUILDERS = {"sd15": build_mid_pipeline, "flux": build_mid_flux, "klein": build_mid_klein,
            "qwen_image": build_mid_qwen}
# Each family's CFG scale (its model card's) and negative prompt: FLUX.1-dev's distilled guidance,
# Klein distilled (no CFG, no negative), Qwen-Image's real CFG (true_cfg_scale) with the negative.
CFG = {"sd15": (7.0, "blurry"), "flux": (3.5, ""), "klein": (1.0, ""), "qwen_image": (4.0, "blurry")}
# The TAESD's scale and shift: taef1 reads FLUX.1's latents un-normalised; Klein's and Qwen's previews
# read grids already normalised (batch-norm / per-channel statistics), so 1 and 0, as SD's TAESD.
TAESD_SCALING = {"flux": (0.3611, 0.1159)}


def timed_job(studio: Studio, request: GenerationRequest) -> tuple[float, float | None, int]:
    """Wall time of one generation as a caller sees it, time to its first preview, preview count."""
    start = time.perf_counter()
    first = None
    count = 0
    for event in studio.generate(request):
        if isinstance(event, Preview):
            count += 1
            first = first if first is not None else time.perf_counter() - start
        elif isinstance(event, Result):
            pass
    return time.perf_counter() - start, first, count


def timed_bare(studio: Studio, pipe, request: GenerationRequest, base_config) -> float:
    """The same generation through a plain diffusers call: our baseline for engine overhead.

    It runs on the studio's device thread, like the engine's own calls: a call from another thread
    would pay for a second OpenMP team (see Studio.on_device) and we would measure that instead.
    """
    start = time.perf_counter()
    studio.on_device(bare_call, pipe, request, base_config)
    return time.perf_counter() - start


def timed_bare_embeds(studio: Studio, pipe, request: GenerationRequest, base_config, embeds: dict) -> float:
    """The bare call given the engine's prompt embeddings: isolates the engine's own overhead."""
    start = time.perf_counter()
    studio.on_device(bare_call, pipe, request, base_config, embeds)
    return time.perf_counter() - start


def bare_call(pipe, request: GenerationRequest, base_config, embeds: dict | None = None) -> None:
    """As a diffusers user would call the pipeline: the family says the sampler kind ("flow" for FLUX,
    Klein, Qwen) and where the CFG scale goes (Qwen: true_cfg_scale); a negative prompt where the
    pipeline takes one (Klein's takes none)."""
    fam = family_of_pipeline(type(pipe).__name__)
    pipe.scheduler = make_scheduler(base_config, resolve(request.sampler, request.schedule, fam.sampler_kind),
                                    [request.seed])
    prompts = embeds or {"prompt": request.prompt}
    if not embeds and "negative_prompt" in call_parameters(pipe):
        prompts["negative_prompt"] = request.negative_prompt or None
    pipe(**prompts, **{fam.cfg_argument: request.cfg_scale},
         num_inference_steps=request.steps, width=request.width,
         height=request.height, generator=[torch.Generator("cpu").manual_seed(request.seed)], output_type="pil")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--family", default="sd15", choices=sorted(BUILDERS))
    parser.add_argument("--out", default=None, help="default bench/results/previews[-family].json")
    args = parser.parse_args()
    suffix = "" if args.family == "sd15" else f"-{args.family}"
    args.out = args.out or str(Path(__file__).resolve().parent / "results" / f"previews{suffix}.json")

    work = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    pipe = BUILDERS[args.family]()
    channels = family_of_pipeline(type(pipe).__name__).latent.channels  # the grid previews read
    pipe.save_pretrained(work / "mid")
    from diffusers import AutoencoderTiny

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        # Full TAESD size, random weights, on the family's grid: its channels, scale and shift.
        scale, shift = TAESD_SCALING.get(args.family, (1.0, 0.0))
        AutoencoderTiny(latent_channels=channels, scaling_factor=scale, shift_factor=shift).save_pretrained(
            work / "taesd")

    studio = Studio(device=args.device, cache_size=1, preview_interval_s=0.0,  # a preview for every step
                    taesd_sources={args.family: str(work / "taesd")})
    loaded = studio.load(str(work / "mid"))
    bare_pipe = loaded.pipe  # the very same modules: only the calling code differs
    base_config = dict(loaded.scheduler_config)

    cfg_scale, negative = CFG[args.family]

    def request(preview: str) -> GenerationRequest:
        return GenerationRequest(prompt="a lighthouse on a cliff at dusk, dramatic sky", negative_prompt=negative,
                                 model=str(work / "mid"), sampler="Euler", steps=args.steps, cfg_scale=cfg_scale,
                                 seed=1234, width=args.size, height=args.size, preview=preview)

    methods = ["latent2rgb", "taesd", "vae"]
    configs = ["none", *methods, "bare", "bare+embeds"]
    first = request("none")
    embeds = studio.prompt_cache.conditioning(loaded, studio.model_key(loaded.source), first,
                                              plan_prompts(first))  # the engine's cached encodings

    def run(name: str) -> tuple[float, float | None, int]:
        if name == "bare":
            return timed_bare(studio, bare_pipe, request("none"), base_config), None, 0
        if name == "bare+embeds":
            return timed_bare_embeds(studio, bare_pipe, request("none"), base_config, embeds), None, 0
        return timed_job(studio, request(name))

    # Warm-up: first calls pay one-off costs (allocations, TAESD load, prompt encode).
    for name in configs:
        run(name)
    step_probe = timed_job(studio, request("none"))[0] / args.steps

    rows: dict[str, list[float]] = {name: [] for name in configs}
    first_preview: dict[str, list[float]] = {m: [] for m in methods}
    previews_shown: dict[str, list[int]] = {m: [] for m in methods}
    for r in range(args.rounds):
        order = configs if r % 2 == 0 else list(reversed(configs))  # alternate order: no position bias
        for name in order:
            wall, first, count = run(name)
            rows[name].append(wall)
            if name in methods:
                first_preview[name].append(first if first is not None else float("nan"))
                previews_shown[name].append(count)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {rows[n][-1]:.2f}s" for n in configs), flush=True)

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(rows[a], rows[b]))

    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "device": studio.device.describe()},
        "settings": {"family": args.family, "rounds": args.rounds, "steps": args.steps, "size": args.size,
                     "sampler": "Euler",
                     "preview_interval_s": 0.0},
        "seconds_per_step": round(step_probe, 3),
        "median_wall_s": {n: round(statistics.median(v), 3) for n, v in rows.items()},
        "previews_over_none": {m: round(ratio(m, "none"), 4) for m in methods},
        "engine_over_bare_diffusers": round(ratio("none", "bare"), 4),
        "engine_over_bare_diffusers_same_embeddings": round(ratio("none", "bare+embeds"), 4),
        "first_preview_s": {m: round(statistics.median(v), 3) for m, v in first_preview.items()},
        "previews_shown_median": {m: statistics.median(v) for m, v in previews_shown.items()},
    }
    print()
    print(f"mid-size {args.family} model, {args.size}px, {args.steps} steps, {result['seconds_per_step']} s/step "
          f"on {result['machine']['device']}, {args.rounds} interleaved rounds (medians)")
    print(f"{'configuration':32} {'wall s':>8} {'ratio':>8} {'1st preview s':>14} {'previews':>9}")
    print(f"{'no previews (engine)':32} {result['median_wall_s']['none']:8.2f} {1.0:8.3f}")
    for m in methods:
        print(f"{'previews every step: ' + m:32} {result['median_wall_s'][m]:8.2f} "
              f"{result['previews_over_none'][m]:8.3f} {result['first_preview_s'][m]:14.2f} "
              f"{result['previews_shown_median'][m]:9}")
    print(f"{'bare diffusers call':32} {result['median_wall_s']['bare']:8.2f}")
    print(f"{'bare call, engine embeddings':32} {result['median_wall_s']['bare+embeds']:8.2f}")
    print(f"engine over bare diffusers: {result['engine_over_bare_diffusers']:.3f}x "
          f"(string prompts, encoded every call); {result['engine_over_bare_diffusers_same_embeddings']:.3f}x "
          "(same prompt embeddings: the engine's own overhead)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
