"""Variation seeds' noise (studio/noise.py) against A1111 1.10's modules/rng.py, written again here the
way A1111 runs it: the global generator reseeded for each `randn(seed, shape)`, one generator per image."""

from __future__ import annotations

import pytest
import torch

from studio import noise


def a1111_randn(seed, shape, generator=None):  # rng.randn with randn_source CPU
    torch.manual_seed(seed)
    return torch.randn(shape, device="cpu", generator=generator)


def a1111_slerp(val, low, high):
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def a1111_first(shape, seeds, subseeds, subseed_strength, seed_resize_from_h, seed_resize_from_w):
    """ImageRNG(shape, seeds, subseeds, ...).first(), its generators returned too."""
    generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]
    noise_shape = shape if seed_resize_from_h <= 0 or seed_resize_from_w <= 0 else \
        (shape[0], seed_resize_from_h // 8, seed_resize_from_w // 8)
    xs = []
    with torch.random.fork_rng(devices=[]):
        for i, (seed, generator) in enumerate(zip(seeds, generators)):
            subnoise = None
            if subseeds is not None and subseed_strength != 0:
                subseed = 0 if i >= len(subseeds) else subseeds[i]
                subnoise = a1111_randn(subseed, noise_shape)
            if noise_shape != shape:
                x_noise = a1111_randn(seed, noise_shape)
            else:
                x_noise = a1111_randn(seed, shape, generator=generator)
            if subnoise is not None:
                x_noise = a1111_slerp(subseed_strength, x_noise, subnoise)
            if noise_shape != shape:
                x = a1111_randn(seed, shape, generator=generator)
                dx = (shape[2] - noise_shape[2]) // 2
                dy = (shape[1] - noise_shape[1]) // 2
                w = noise_shape[2] if dx >= 0 else noise_shape[2] + 2 * dx
                h = noise_shape[1] if dy >= 0 else noise_shape[1] + 2 * dy
                tx = 0 if dx < 0 else dx
                ty = 0 if dy < 0 else dy
                dx = max(-dx, 0)
                dy = max(-dy, 0)
                x[:, ty:ty + h, tx:tx + w] = x_noise[:, dy:dy + h, dx:dx + w]
                x_noise = x
            xs.append(x_noise)
    return torch.stack(xs), generators


def ours(shape, seeds, subseeds, strength, resize_h, resize_w):
    generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]
    return noise.first_noise(shape, seeds, generators, subseeds, strength, (resize_w, resize_h)), generators


CASES = {
    "strength": ((4, 6, 5), [11, 11], [70, 71], 0.3, 0, 0),
    "strength, larger old size": ((4, 6, 5), [11], [70], 0.6, 80, 64),
    "resize from smaller": ((4, 9, 7), [5, 6], [1, 2], 0.0, 48, 32),
    "resize from larger, one side smaller": ((4, 6, 6), [5], [1], 0.0, 96, 24),
    "strength and resize": ((16, 8, 8), [123456789], [4294967295], 0.75, 40, 56),
    "subseeds run out": ((4, 4, 4), [1, 1, 1], [9], 0.5, 0, 0),
    "near parallel: seed = subseed": ((4, 5, 5), [3], [3], 0.25, 0, 0),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_the_noise_is_a1111s_bit_for_bit_and_the_generators_are_advanced_alike(case):
    shape, seeds, subseeds, strength, resize_h, resize_w = case
    expected, their_generators = a1111_first(shape, seeds, subseeds, strength, resize_h, resize_w)
    got, our_generators = ours(shape, seeds, subseeds, strength, resize_h, resize_w)
    assert got.dtype == torch.float32 and torch.equal(got, expected)
    for theirs, mine in zip(their_generators, our_generators):  # a sampler's step noise goes on alike
        assert torch.equal(torch.randn(3, generator=theirs), torch.randn(3, generator=mine))


def test_strength_0_is_the_seeds_own_noise_and_1_the_subseeds():
    shape, seeds = (4, 6, 6), [21, 22]
    plain = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])
    assert torch.equal(ours(shape, seeds, [7, 8], 0.0, 0, 0)[0], plain)
    subs = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in (7, 8)])
    assert torch.equal(ours(shape, seeds, [7, 8], 1.0, 0, 0)[0], subs)
    between = ours(shape, seeds, [7, 8], 0.5, 0, 0)[0]
    assert not torch.equal(between, plain) and not torch.equal(between, subs)


def test_a_resize_keeps_the_old_sizes_noise_in_the_middle():
    old = torch.randn((4, 4, 6), generator=torch.Generator().manual_seed(9))  # 48 x 32 px
    resized = ours((4, 8, 10), [9], None, 0.0, 32, 48)[0][0]  # now 80 x 64 px
    assert torch.equal(resized[:, 2:6, 2:8], old)
    assert not torch.equal(resized[:, :2], torch.zeros_like(resized[:, :2]))  # the rest: the seed's new noise
    smaller = ours((4, 2, 2), [9], None, 0.0, 32, 48)[0][0]  # cut down: the old noise's middle
    assert torch.equal(smaller, old[:, 1:3, 2:4])


def test_slerp_keeps_a1111s_quirk_for_nearly_parallel_noise():
    a = torch.randn((2, 3, 3), generator=torch.Generator().manual_seed(1))
    assert torch.equal(noise.slerp(0.3, a, 2 * a), a * 0.3 + 2 * a * 0.7)  # val weighs low, not high
