"""Tiny random-weight pipelines of the flow-matching families (FLUX.1 dev and schnell, SD3.5, Z-Image).

Like `tiny.py`'s SD models: random weights (their images are noise), built offline in well under a
second, deterministic, shaped like the real ones where it matters to the code: a 16-channel VAE
that downsamples 8x with a shift factor, 2x2-packed latents, a T5 encoder with a generated Unigram
tokenizer beside the CLIP one, distilled guidance (dev) or none (schnell).
"""

from __future__ import annotations

import torch
from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxPipeline,
                       FluxTransformer2DModel, SD3Transformer2DModel, StableDiffusion3Pipeline, ZImagePipeline,
                       ZImageTransformer2DModel)
from transformers import (CLIPTextModel, CLIPTextModelWithProjection, PreTrainedTokenizerFast, Qwen3Config,
                          Qwen3Model, T5Config, T5EncoderModel, T5Tokenizer)

from .tiny import TINY_SEED, _byte_alphabet, _text_config, tiny_tokenizer

T5_WIDTH = 32
T5_MAX_LENGTH = 512  # FLUX.1's max_sequence_length (dev); schnell uses 256


def tiny_t5_tokenizer() -> T5Tokenizer:
    """A SentencePiece-style Unigram tokenizer built in memory: every printable ASCII character,
    alone and after the word-start mark, so any text tokenizes (unknown characters become <unk>)."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    for code in range(33, 127):
        char = chr(code)
        pieces += [(char, -3.0), ("\u2581" + char, -2.5)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)


def _t5(width: int = T5_WIDTH) -> T5EncoderModel:
    return T5EncoderModel(T5Config(
        vocab_size=256, d_model=width, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", decoder_start_token_id=0,
    )).eval()


def _flow_vae(scale: float = 0.3611, shift: float = 0.1159) -> AutoencoderKL:
    """Four blocks: 8x downsampling as the real FLUX / SD3 VAEs; 16 latent channels, scale and shift."""
    return AutoencoderKL(
        block_out_channels=(16, 16, 16, 16), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=16, norm_num_groups=8, sample_size=64, layers_per_block=1,
        scaling_factor=scale, shift_factor=shift, use_quant_conv=False, use_post_quant_conv=False,
    )


def _flux_scheduler(dev: bool) -> FlowMatchEulerDiscreteScheduler:
    if dev:  # FLUX.1-dev's scheduler config: resolution-dependent shift
        return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                               base_image_seq_len=256, max_image_seq_len=4096)
    return FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)


def build_tiny_flux(dev: bool = True) -> FluxPipeline:
    """A FLUX.1-shaped pipeline: dev (distilled guidance embedding) or schnell (no guidance)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=T5_WIDTH, pooled_projection_dim=32,
            guidance_embeds=dev, axes_dims_rope=(4, 6, 6),
        )
        vae = _flow_vae()
        text_encoder = CLIPTextModel(_text_config(32)).eval()
        text_encoder_2 = _t5()
    return FluxPipeline(
        transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(),
        text_encoder_2=text_encoder_2, tokenizer_2=tiny_t5_tokenizer(), scheduler=_flux_scheduler(dev),
    )


def build_tiny_flux_schnell() -> FluxPipeline:
    return build_tiny_flux(dev=False)


def build_tiny_kontext() -> FluxKontextPipeline:
    """FLUX.1 Kontext's pipeline on the tiny dev weights: Kontext is dev's transformer trained to edit."""
    pipe = FluxKontextPipeline(**build_tiny_flux(dev=True).components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


SD3_T5_WIDTH = 64  # both CLIP widths side by side (32 + 32) must fit in it: they are zero-padded up to it


def build_tiny_sd3() -> StableDiffusion3Pipeline:
    """An SD3.5-shaped pipeline: an MMDiT with a dual-attention layer and RMS q/k norms, two CLIPs with
    projections plus T5, the 16-channel VAE with SD3's scale and shift, SD3's shift-3 flow scheduler."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        transformer = SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=SD3_T5_WIDTH, caption_projection_dim=32,
            pooled_projection_dim=64, pos_embed_max_size=64, dual_attention_layers=(0,), qk_norm="rms_norm",
        )
        vae = _flow_vae(scale=1.5305, shift=0.0609)
        clip_l = CLIPTextModelWithProjection(_text_config(32, projection=32)).eval()
        clip_g = CLIPTextModelWithProjection(_text_config(32, projection=32)).eval()
        t5 = _t5(SD3_T5_WIDTH)
    tokenizer = tiny_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=vae, text_encoder=clip_l, tokenizer=tokenizer, text_encoder_2=clip_g,
        tokenizer_2=tokenizer, text_encoder_3=t5, tokenizer_3=tiny_t5_tokenizer(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


# Qwen's chat format, as Z-Image's pipeline applies it to every prompt (enable_thinking=True: no
# empty think block).
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}"
    "<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")


def tiny_qwen_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (every byte a token, no merges) with Qwen's special tokens and chat
    template, built in memory: any text tokenizes, offline."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {char: index for index, char in enumerate(_byte_alphabet())}
    for special in QWEN_SPECIALS:
        vocab[special] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(special, special=True) for special in QWEN_SPECIALS])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                      model_max_length=T5_MAX_LENGTH)
    wrapped.chat_template = QWEN_CHAT_TEMPLATE
    return wrapped


def build_tiny_zimage() -> ZImagePipeline:
    """A Z-Image-Turbo-shaped pipeline: a one-layer single-stream DiT with a refiner layer, a Qwen3
    text encoder (its penultimate layer is the condition), FLUX's 16-channel VAE, Turbo's shift-3 flow."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        text_encoder = Qwen3Model(Qwen3Config(
            vocab_size=300, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=1024)).eval()
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=1, n_refiner_layers=1,
            n_heads=2, n_kv_heads=2, cap_feat_dim=32, axes_dims=[4, 6, 6], axes_lens=[1024, 64, 64],
        )
        vae = _flow_vae()
    return ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False),
                          vae=vae, text_encoder=text_encoder, tokenizer=tiny_qwen_tokenizer(), transformer=transformer)
