"""Tiny random-weight Qwen-Image pipelines: text-to-image (Qwen-Image) and multi-reference editing
(Qwen-Image-Edit-2511).

Like `tiny_flow.py`'s: random weights (their images are noise), built offline in well under a second,
deterministic, shaped like the real ones where it matters to the code: the 16-channel causal-3D VAE
(5-D latents, 8x down, per-channel `latents_mean` / `latents_std`), 2x2-packed latents (64 values a
token), a Qwen2.5-VL text encoder with a vision tower (14-pixel patches, 2x2 merges, as its image
processor cuts them), a Qwen2 BPE tokenizer whose few merges make the pipelines' system prompts as
many tokens as the real tokenizer does (34 and 64: the pipelines drop them by count), and
Qwen-Image's exponential dynamic-shift flow scheduler. The edit model modulates its reference
tokens at t=0 (`zero_cond_t`, as 2511 does). An edit run still costs seconds on a CPU: the pipeline
resizes every reference to about a megapixel for the VAE (its module's `VAE_IMAGE_SIZE`).
"""

from __future__ import annotations

import torch
from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageEditPlusPipeline,
                       QwenImagePipeline, QwenImageTransformer2DModel)
from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer,
                          Qwen2VLImageProcessorPil, Qwen2VLProcessor)
from transformers.utils import is_torchvision_available

from .tiny import TINY_SEED, _byte_alphabet

TEXT_WIDTH = 32
QWEN_VL_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
# The system prompts of the two pipelines' templates: the tokenizer learns their words whole, as the
# real one does, so that the pipelines' fixed drop counts (34 and 64 tokens) cut exactly at the prompt.
QWEN_SYSTEM_PROMPTS = (
    "Describe the image by detailing the color, shape, size, texture, quantity, text, spatial relationships"
    " of the objects and background:",
    "Describe the key features of the input image (color, shape, size, texture, objects, background), then"
    " explain how the user's text instruction should alter or modify the image. Generate a new image that meets"
    " the user's requirements while maintaining consistency with the original input where appropriate.",
)
# Qwen2-VL's chat format (the processor's): a default system turn, images as vision placeholders.
QWEN_VL_CHAT_TEMPLATE = (
    "{% set n = namespace(images=0) %}{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' or 'image' in c %}{% set n.images = n.images + 1 %}"
    "{% if add_vision_id %}Picture {{ n.images }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in c %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen2_tokenizer() -> Qwen2Tokenizer:
    """Qwen2's byte-level BPE (its regex, its special tokens) built in memory: every byte a token, plus
    merges that spell the template words whole. Words with a leading space merge first, so no other
    word's merges can cut into them."""
    pre = Qwen2Tokenizer(vocab={c: i for i, c in enumerate(_byte_alphabet())}).backend_tokenizer.pre_tokenizer
    words = [piece for text in ("system\n", "user\n", "assistant\n", *QWEN_SYSTEM_PROMPTS)
             for piece, _ in pre.pre_tokenize_str(text)]
    words = sorted(dict.fromkeys(words), key=lambda word: not word.startswith("\u0120"))
    vocab = {char: index for index, char in enumerate(_byte_alphabet())}
    merges: list[tuple[str, str]] = []
    for word in words:
        for end in range(1, len(word)):
            if word[:end + 1] not in vocab:
                vocab[word[:end + 1]] = len(vocab)
                merges.append((word[:end], word[end]))
    for special in QWEN_VL_SPECIALS:
        vocab[special] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", model_max_length=32768,
                               extra_special_tokens=list(QWEN_VL_SPECIALS[1:]))
    tokenizer.chat_template = QWEN_VL_CHAT_TEMPLATE
    return tokenizer


def tiny_qwen_vl_processor(tokenizer: Qwen2Tokenizer) -> Qwen2VLProcessor:
    """Qwen2-VL's processor with the PIL image processor (no torchvision needed): 14-pixel patches, two
    frames a temporal patch, 2x2 merges, sizes rounded to 28, the real pixel bounds."""
    images = Qwen2VLImageProcessorPil(patch_size=14, temporal_patch_size=2, merge_size=2,
                                      min_pixels=56 * 56, max_pixels=28 * 28 * 16384)
    if is_torchvision_available():
        from transformers import Qwen2VLVideoProcessor

        return Qwen2VLProcessor(image_processor=images, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
                                chat_template=QWEN_VL_CHAT_TEMPLATE)
    # transformers 5 checks each sub-processor's class, the video one's needs torchvision: without it no
    # Qwen2VLProcessor builds (or loads), so set what its __init__ would (the pipelines pass no videos).
    processor = Qwen2VLProcessor.__new__(Qwen2VLProcessor)
    processor.__dict__.update(
        chat_template=QWEN_VL_CHAT_TEMPLATE, image_processor=images, tokenizer=tokenizer, video_processor=None,
        image_token="<|image_pad|>", image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token="<|video_pad|>", video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"))
    return processor


def _text_encoder(tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLForConditionalGeneration:
    """Qwen2.5-VL with 2 text layers (grouped-query attention, multimodal RoPE whose sections add up to
    half a head) and a 2-block vision tower (one windowed, one full attention) projecting to the text width."""
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=37, num_heads=2, out_hidden_size=TEXT_WIDTH, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1],
            tokens_per_second=2,
        ),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _vae() -> AutoencoderKLQwenImage:
    """Four levels, three of them downsampling (8x), the last two in time too, like the real one; its
    default `latents_mean` / `latents_std` are the real per-channel statistics. Narrow (2 to 8 channels):
    the edit pipeline encodes every reference at about a megapixel, whatever the output size."""
    return AutoencoderKLQwenImage(base_dim=2, z_dim=16, dim_mult=[1, 1, 2, 4], num_res_blocks=1,
                                  temperal_downsample=[False, True, True]).eval()


def _transformer(edit: bool) -> QwenImageTransformer2DModel:
    """The MMDiT: 2x2 patches of the 16-channel latent (64 in), RoPE axes summing to the head width;
    `zero_cond_t` (Edit-2511's) modulates the reference tokens at t=0."""
    return QwenImageTransformer2DModel(
        patch_size=2, in_channels=64, out_channels=16, num_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=TEXT_WIDTH, axes_dims_rope=(4, 6, 6), zero_cond_t=edit,
    ).eval()


def qwen_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Qwen-Image's scheduler config (also Edit-2509 / 2511's): resolution-dependent exponential shift."""
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
        base_image_seq_len=256, max_image_seq_len=8192, shift_terminal=0.02, time_shift_type="exponential",
    )


def _components(edit: bool) -> dict:
    tokenizer = tiny_qwen2_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        text_encoder = _text_encoder(tokenizer)
        transformer = _transformer(edit)
        vae = _vae()
    return dict(scheduler=qwen_scheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                transformer=transformer)


def build_tiny_qwen_image() -> QwenImagePipeline:
    """A Qwen-Image-shaped text-to-image pipeline (true CFG with a negative prompt, no guidance embedding)."""
    return QwenImagePipeline(**_components(edit=False))


def build_tiny_qwen_edit() -> QwenImageEditPlusPipeline:
    """A Qwen-Image-Edit-2511-shaped pipeline: one or more reference pictures, seen both by the VL encoder
    (through the processor) and by the transformer (VAE latents appended to the noise tokens)."""
    components = _components(edit=True)
    return QwenImageEditPlusPipeline(processor=tiny_qwen_vl_processor(components["tokenizer"]), **components)
