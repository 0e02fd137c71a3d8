"""A1111's prompt editing and alternation in the passes: the denoiser receives, at each step, the
embeddings of the text the schedule names for that step (recorded by a hook on the denoiser), for every
family whose pipeline takes embeddings; same seed = same image; PNG Info regenerates it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support import pixels
from studio import GenerationRequest, Studio
from studio.errors import StudioError
from studio.metadata import read_png
from studio.outputs import OutputFolder
from studio.pnginfo import recall

# Each family's tiny model; the text argument its denoiser receives the prompt in.
FAMILIES = {"tiny": "encoder_hidden_states", "tiny-xl": "encoder_hidden_states",
            "tiny-sd3": "encoder_hidden_states", "tiny-flux": "encoder_hidden_states",
            "tiny-klein": "encoder_hidden_states", "tiny-kontext": "encoder_hidden_states",
            "tiny-zimage": 2}  # Z-Image's transformer takes its list of embeddings third, by position


@pytest.fixture(scope="module")
def studio():
    return Studio(device="cpu", cache_size=3, preview_interval_s=0.0)


def request(model: str, prompt: str, **fields) -> GenerationRequest:
    base = {"prompt": prompt, "negative_prompt": "blurry", "steps": 6, "seed": 5, "width": 64, "height": 64,
            "preview": "none", "sampler": "Euler"}
    return GenerationRequest.for_model(model, **{**base, **fields})


def received(studio: Studio, req: GenerationRequest, argument) -> list[torch.Tensor]:
    """What the denoiser was called with, call by call, for the text argument."""
    loaded = studio.load(req.source)
    denoiser = getattr(loaded.pipe, loaded.family_def.denoiser)
    seen: list[torch.Tensor] = []

    def hook(module, args, kwargs):
        value = args[argument] if isinstance(argument, int) else kwargs[argument]
        seen.append(torch.cat(list(value)) if isinstance(value, list) else value.clone())

    handle = denoiser.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        studio.run(req)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("model", list(FAMILIES))
def test_each_step_gets_its_own_texts_embeddings(studio, model):
    argument = FAMILIES[model]
    cat = received(studio, request(model, "a cat"), argument)
    dog = received(studio, request(model, "a dog"), argument)
    assert not torch.equal(cat[0], dog[0])
    # A1111: [a cat:a dog:2] is 'a cat' for sampling steps 0..2 and 'a dog' from step 3 on
    edited = received(studio, request(model, "[a cat:a dog:2]"), argument)
    calls = len(edited) // 6  # FLUX dev's true CFG or a CFG batch: the same number of calls per step
    assert len(edited) == len(cat)
    for i, value in enumerate(edited):
        expected = cat if i // calls <= 2 else dog
        assert torch.equal(value, expected[i]), f"call {i} (step {i // calls})"


@pytest.mark.parametrize("model, fields", [("tiny", {}), ("tiny-flux", {"true_cfg_scale": 2.0}), ("tiny-sd3", {})])
def test_alternation_swaps_every_step_and_the_negative_prompt_too(studio, model, fields):
    """In a CFG batch (SD, SD3) and in FLUX's separate negative call (true CFG), the positive's and the
    negative's rows equal at the first step ('' and ''): the conventions tell them apart."""
    # A1111's alternation: entries end at 1, 2, 3...: sampling steps 0 and 1 take the first option, then
    # the second, the first, ... So [|blue] is '', '', blue, '', blue, '' and [red|blue] likewise.
    texts = {step: ("", "red") if step <= 1 or step % 2 == 1 else ("blue", "blue") for step in range(6)}
    plain = {pair: received(studio, request(model, pair[0], negative_prompt=pair[1], **fields),
                            "encoder_hidden_states") for pair in set(texts.values())}
    alternating = received(studio, request(model, "[|blue]", negative_prompt="[red|blue]", **fields),
                           "encoder_hidden_states")
    calls = len(alternating) // 6  # FLUX's true CFG: the positive's call, then the negative's
    assert len(alternating) == len(plain[("", "red")]) and calls == (2 if model == "tiny-flux" else 1)
    for i, value in enumerate(alternating):
        assert torch.equal(value, plain[texts[i // calls]][i]), i


@pytest.mark.parametrize("model", ["tiny", "tiny-sd3"])
def test_equal_positive_and_negative_rows_are_told_apart_by_the_cfg_batch(studio, model):
    texts = {step: ("", "") if step <= 1 or step % 2 == 1 else ("blue", "red") for step in range(6)}
    plain = {pair: received(studio, request(model, pair[0], negative_prompt=pair[1]), "encoder_hidden_states")
             for pair in set(texts.values())}
    edited = received(studio, request(model, "[|blue]", negative_prompt="[|red]"), "encoder_hidden_states")
    for i, value in enumerate(edited):
        assert torch.equal(value, plain[texts[i]][i]), i


def test_flux_refuses_a_negative_prompt_empty_at_some_steps_only(studio):
    with pytest.raises(StudioError, match="negative_prompt:.*empty at every step or at none"):
        studio.run(request("tiny-flux", "a cat", negative_prompt="[|red]", true_cfg_scale=2.0))


def test_hires_pass_follows_its_own_schedule(studio):
    hires = {"hires": True, "hires_upscaler": "Latent", "hires_scale": 1.5, "hires_steps": 4,
             "hires_strength": 1.0}
    cat = received(studio, request("tiny", "a cat", **hires), "encoder_hidden_states")
    dog = received(studio, request("tiny", "a dog", **hires), "encoder_hidden_states")
    # [a cat:a dog:1.5]: 'a dog' from the first pass's step 7 (past its 6), i.e. all of it is 'a cat';
    # in the hires pass (1.5 - 1) x 4 = step 2: steps 0..2 'a cat', then 'a dog'.
    edited = received(studio, request("tiny", "[a cat:a dog:1.5]", **hires), "encoder_hidden_states")
    assert len(edited) == len(cat) == 6 + 4
    for i, value in enumerate(edited):
        expected = dog if i >= 6 + 3 else cat
        assert torch.equal(value, expected[i]), i


def test_same_seed_same_image_and_edits_change_it(studio):
    edited = pixels(studio.run(request("tiny", "a [cat:dog:0.5] on a [red|blue] mat")).images[0])
    assert np.array_equal(edited, pixels(studio.run(request("tiny", "a [cat:dog:0.5] on a [red|blue] mat")).images[0]))
    assert not np.array_equal(edited, pixels(studio.run(request("tiny", "a cat on a red mat")).images[0]))
    # An alternation of one text changes nothing: the hooks swap nothing in, bit for bit
    assert np.array_equal(pixels(studio.run(request("tiny", "a [cat|cat]")).images[0]),
                          pixels(studio.run(request("tiny", "a cat")).images[0]))


def test_a_png_regenerates_the_same_image_and_batches_run(studio, tmp_path):
    result = studio.run(request("tiny", "a [cat:dog:3], [red|blue]"))
    saved = OutputFolder(tmp_path).save(result)
    again = studio.run(GenerationRequest.from_settings(recall(read_png(saved[0])).fields))
    assert "[cat:dog:3], [red|blue]" in result.infotexts[0]  # the infotext keeps the prompt as written
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))
    batch = studio.run(request("tiny", "a [cat:dog:3], [red|blue]", batch_size=2))  # rows of a batch swapped alike
    assert len(batch.images) == 2 and not np.array_equal(pixels(batch.images[0]), pixels(batch.images[1]))


def test_prompts_of_different_lengths_line_up(studio):
    long = ", ".join(["a very detailed red cube"] * 20)  # past 75 tokens: two chunks
    result = studio.run(request("tiny", f"[a cat:{long}:2]", steps=4))
    assert result.images[0].size == (64, 64)


def test_qwen_image_refuses_prompt_editing_by_name(studio):
    with pytest.raises(StudioError, match="prompt:.*prompt editing"):
        studio.run(request("tiny-qwen-image", "a [cat:dog:2]", negative_prompt=""))


def test_too_many_texts_are_refused_before_any_work(studio):
    from studio.service.plan import make_plan
    from studio.config import StudioConfig

    prompt = "[a|b] [c|d|e] [f|g|h|i] [j|k|l|m|n]"  # a new combination every step for 60 steps
    with pytest.raises(StudioError, match="prompt:.*different prompts"):
        make_plan({"prompt": prompt, "model": "tiny", "steps": 40}, StudioConfig())


def test_a_controlnet_reads_each_steps_text_too(studio):
    from PIL import Image

    unit = {"image": Image.new("RGB", (64, 64), "white"), "module": "none", "model": "builtin:controlnet/sd15"}
    seen: dict[str, list] = {}
    for prompt in ("a cat", "a dog", "[a cat:a dog:2]"):
        req = request("tiny", prompt, controlnets=[unit])
        studio.run(req)  # loads the ControlNet
        net = studio.controlnets.get("builtin:controlnet/sd15")  # the one the run used (cached)
        calls: list = []
        handle = net.register_forward_pre_hook(lambda m, a, k: calls.append(k["encoder_hidden_states"].clone()),
                                               with_kwargs=True)
        try:
            studio.run(req)
        finally:
            handle.remove()
        seen[prompt] = calls
    for step, value in enumerate(seen["[a cat:a dog:2]"]):
        assert torch.equal(value, seen["a cat" if step <= 2 else "a dog"][step]), step
