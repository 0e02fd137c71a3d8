"""A tiny random-weight FLUX.2 Klein pipeline (`Flux2KleinPipeline`, the 4B distilled model's shape).

Like `tiny_flow.py`'s models: random weights (its images are noise), built offline in well under a
second, deterministic, shaped like the real FLUX.2 [klein] 4B where it matters to the code: a Qwen3
causal LM whose hidden states 9, 18 and 27 (the pipeline's default `text_encoder_out_layers`) are
stacked into the condition (so 36 thin layers, as Qwen3-4B has), a byte-level Qwen2 tokenizer with
Qwen's chat template, FLUX.2's VAE (8x down, 32 latent channels, patchified 2x2 into 128 and
normalized by a batch-norm's running statistics, non-trivial here so a missed un-normalization
shows), a transformer without a guidance embedding and `is_distilled=True` (no CFG: one pass a
step), and FLUX.2's flow scheduler (dynamic shifting; the pipeline passes sigmas and an empirical mu).
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
from transformers import Qwen2Tokenizer, Qwen3Config, Qwen3ForCausalLM

from .tiny import TINY_SEED, _byte_alphabet
from .tiny_flow import QWEN_CHAT_TEMPLATE, QWEN_SPECIALS

QWEN_WIDTH = 32
QWEN_LAYERS = 36  # Qwen3-4B's depth: the default out layers (9, 18, 27) must exist
KLEIN_OUT_LAYERS = (9, 18, 27)
KLEIN_LATENT_CHANNELS = 32  # x4 once patchified: the transformer sees 128-channel tokens


def tiny_klein_tokenizer() -> Qwen2Tokenizer:
    """Qwen's tokenizer class (byte-level BPE, every byte a token, no merges) with Qwen3's special
    tokens and chat template, built in memory: any text tokenizes, offline."""
    vocab = {char: index for index, char in enumerate(_byte_alphabet())}
    for special in QWEN_SPECIALS:
        vocab[special] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>", model_max_length=131072)
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIALS[1:])})
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def _qwen3() -> Qwen3ForCausalLM:
    return Qwen3ForCausalLM(Qwen3Config(
        vocab_size=300, hidden_size=QWEN_WIDTH, intermediate_size=37, num_hidden_layers=QWEN_LAYERS,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
        tie_word_embeddings=True)).eval()


def _klein_vae(widths: tuple[int, ...] = (16, 16, 16, 16), groups: int = 8) -> AutoencoderKLFlux2:
    """Four blocks (8x down) and 32 latent channels as the real one; random batch-norm statistics."""
    vae = AutoencoderKLFlux2(
        block_out_channels=widths, in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=KLEIN_LATENT_CHANNELS, norm_num_groups=groups, sample_size=64, layers_per_block=1,
    )
    channels = vae.bn.num_features  # 4 * latent_channels (2x2 patches)
    vae.bn.running_mean.copy_(0.1 * torch.randn(channels))
    vae.bn.running_var.copy_(0.5 + torch.rand(channels))
    return vae.eval()


def _klein_scheduler() -> FlowMatchEulerDiscreteScheduler:
    # FLUX.2's scheduler config (the pipeline overrides the schedule with its own sigmas and mu).
    return FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
        max_image_seq_len=4096, time_shift_type="exponential")


def build_tiny_klein(blocks: tuple[int, int] = (1, 1), heads: int = 2, head_dim: int = 16,
                     vae_widths: tuple[int, ...] = (16, 16, 16, 16), vae_groups: int = 8) -> Flux2KleinPipeline:
    """A FLUX.2-[klein]-4B-shaped pipeline: 1 double + 1 single block, distilled (no guidance, no CFG).
    The sizes are arguments for bench/previews.py's mid-size model."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        transformer = Flux2Transformer2DModel(
            patch_size=1, in_channels=4 * KLEIN_LATENT_CHANNELS, num_layers=blocks[0], num_single_layers=blocks[1],
            attention_head_dim=head_dim, num_attention_heads=heads,
            joint_attention_dim=len(KLEIN_OUT_LAYERS) * QWEN_WIDTH, mlp_ratio=3.0,
            axes_dims_rope=(head_dim // 4,) * 4, guidance_embeds=False,
        )
        vae = _klein_vae(vae_widths, vae_groups)
        text_encoder = _qwen3()
    return Flux2KleinPipeline(scheduler=_klein_scheduler(), vae=vae, text_encoder=text_encoder,
                              tokenizer=tiny_klein_tokenizer(), transformer=transformer, is_distilled=True)
