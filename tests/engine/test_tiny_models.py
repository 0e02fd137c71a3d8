"""The offline tiny models: deterministic, offline, with a generated tokenizer."""

from __future__ import annotations

import torch

from studio.tiny import build_tiny_sd15, build_tiny_sdxl, tiny_tokenizer


def test_tiny_models_are_deterministic_and_leave_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    for build in (build_tiny_sd15, build_tiny_sdxl):
        a, b = build().unet.state_dict(), build().unet.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(torch.rand(2), expected)


def test_generated_tokenizer_pads_to_77_and_fits_the_text_model():
    tokenizer = tiny_tokenizer()
    ids = tokenizer("a red cube, 🐱 ünïcode", padding="max_length", truncation=True).input_ids
    assert len(ids) == 77
    pipe = build_tiny_sd15()
    assert len(tokenizer) < pipe.text_encoder.config.vocab_size
    assert ids[0] == tokenizer.bos_token_id and tokenizer.eos_token_id in ids


def test_sdxl_tiny_has_two_encoders_and_a_projection():
    pipe = build_tiny_sdxl()
    assert pipe.text_encoder is not None and pipe.text_encoder_2 is not None
    assert type(pipe.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
