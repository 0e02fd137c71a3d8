"""Textual-inversion embeddings on the tiny models (A1111's embeddings folder): used by name in either
prompt, weighted as words are, counted as tokens, SDXL's two encoders, files that do not fit skipped,
pickles refused, `TI hashes` written and read back, the encoding cache never stale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support import pixels, tiny_request
from support.embedding_files import vectors, write_a1111_pt, write_concept, write_xl
from studio import Studio, embeddings, families
from studio.embeddings import files
from studio.errors import InvalidValue
from studio.metadata import PngMetadata
from studio.pnginfo import recall
from studio.prompts import parse


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("embeddings")
    write_concept(path, "mystyle", count=3, seed=1)  # three vectors
    write_concept(path, "wide", count=1, width=48, seed=2)  # an SD 2.x-like width: fits neither tiny model
    write_xl(path, "xlstyle", count=2, seed=3)
    write_a1111_pt(path, "legacy", count=2, seed=4)  # refused: no --allow-pickle
    return path


@pytest.fixture(scope="module")
def ti_studio(folder):
    return Studio(device="cpu", cache_size=2, embeddings_dir=folder, preview_interval_s=0.0)


def encode(pipe, text, family="sd15", clip_skip=1):
    return families.family(family).prompt_encoder(pipe, clip_skip).encode(parse(text, "A1111"))


@pytest.fixture(scope="module")
def sd(ti_studio, folder):
    pipe = ti_studio.load("tiny").pipe
    embeddings.attach(pipe, "sd15", folder, False)
    return pipe


@pytest.fixture(scope="module")
def xl(ti_studio, folder):
    pipe = ti_studio.load("tiny-xl").pipe
    embeddings.attach(pipe, "sdxl", folder, False)
    return pipe


@pytest.fixture(scope="module")
def plain(studio):
    """The same tiny model (same seed, same weights) with no embeddings folder."""
    return studio.load("tiny").pipe


def test_an_embedding_changes_the_encoding_the_same_way_every_time_and_plain_prompts_are_untouched(sd, plain):
    with_it = encode(sd, "a mystyle cat").embeds
    assert not torch.equal(with_it, encode(plain, "a mystyle cat").embeds)  # there the name is words
    assert torch.equal(with_it, encode(sd, "a mystyle cat").embeds)
    for text in ("a red cube", "a (red:1.3) cube BREAK on a mat", ""):  # exactly as without the folder
        assert torch.equal(encode(sd, text).embeds, encode(plain, text).embeds)
    assert torch.equal(encode(sd, "a mystyle cat", clip_skip=2).embeds, encode(sd, "a mystyle cat", clip_skip=2).embeds)


def test_an_unknown_name_is_just_words(sd, plain):
    assert torch.equal(encode(sd, "a nosuchstyle cat").embeds, encode(plain, "a nosuchstyle cat").embeds)
    assert torch.equal(encode(sd, "a mystyles cat").embeds, encode(plain, "a mystyles cat").embeds)  # not a prefix


def test_token_counts_include_every_vector(ti_studio, sd, plain):
    name_tokens = len(sd.tokenizer(["mystyle"], add_special_tokens=False)["input_ids"][0])
    ours = ti_studio.describe_prompt("a mystyle cat", "tiny").chunk_tokens
    words = families.family("sd15").count_tokens(plain, parse("a mystyle cat", "A1111"))
    assert list(ours) == [words[0] - name_tokens + 3]
    vocabulary = embeddings.of(sd)
    ids = sd.tokenizer(["mystyle"], add_special_tokens=False)["input_ids"][0]
    assert vocabulary.substitute(ids) == [-1, -2, -3]  # one token per vector, each its own


def test_a_weight_scales_all_its_vectors_as_it_scales_words(sd):
    plain_z = encode(sd, "mystyle cat").embeds
    weighted = encode(sd, "(mystyle:1.5) cat").embeds
    empty = families.family("sd15").prompt_encoder(sd, 1).empty().embeds
    places = slice(1, 4)  # after the start token: the three vectors
    expected = empty[:, places] + (plain_z[:, places] - empty[:, places]) * 1.5
    assert torch.allclose(weighted[:, places], expected, atol=1e-5)
    assert torch.equal(weighted[:, 4:], plain_z[:, 4:])


def test_every_vector_of_a_multi_vector_embedding_is_read(tmp_path, ti_studio):
    write_concept(tmp_path, "three", count=3, seed=1)
    pipe = ti_studio.load("tiny").pipe
    first = files.read(tmp_path / "three.safetensors", False)
    changed = vectors(3, seed=1)
    changed[2] += 1.0  # the last vector only
    from safetensors.torch import save_file

    other = tmp_path / "other"
    other.mkdir()
    save_file({"emb_params": changed}, str(other / "three.safetensors"))
    try:
        embeddings.attach(pipe, "sd15", tmp_path, False)
        a = encode(pipe, "three").embeds
        embeddings.attach(pipe, "sd15", other, False)
        b = encode(pipe, "three").embeds
    finally:
        embeddings.attach(pipe, "sd15", ti_studio.config.embeddings_dir, False)
    assert first.count == 3 and not torch.equal(a, b)
    assert torch.equal(a[:, :3], b[:, :3])  # the causal encoder: the change shows from the third vector on


def test_sdxl_embeddings_feed_both_encoders_and_the_wrong_width_is_skipped(xl, sd, studio):
    vocabulary = embeddings.of(xl)
    assert [e.name for e in vocabulary.loaded] == ["xlstyle"]
    assert {e.name for e in vocabulary.skipped} == {"mystyle", "wide"}  # SD 1.x files, another width
    plain_xl = studio.load("tiny-xl").pipe
    ours, words = encode(xl, "a xlstyle dog", "sdxl"), encode(plain_xl, "a xlstyle dog", "sdxl")
    assert ours.embeds.shape == words.embeds.shape == (1, 77, 64)
    assert not torch.equal(ours.embeds[..., :32], words.embeds[..., :32])  # clip_l's half
    assert not torch.equal(ours.embeds[..., 32:], words.embeds[..., 32:])  # clip_g's half
    assert not torch.equal(ours.pooled, words.pooled)
    assert torch.equal(encode(xl, "a mystyle dog", "sdxl").embeds, encode(plain_xl, "a mystyle dog", "sdxl").embeds)
    sd_vocabulary = embeddings.of(sd)
    assert {e.name for e in sd_vocabulary.skipped} == {"xlstyle", "wide"}


def test_a_pickled_file_is_refused_without_allow_pickle_and_read_with_it(folder, sd):
    with pytest.raises(InvalidValue, match=r"legacy\.pt.*--allow-pickle"):
        files.read(folder / "legacy.pt", False)
    legacy = files.read(folder / "legacy.pt", True)  # torch's weights-only unpickler
    assert legacy.count == 2 and legacy.step == 500 and legacy.sd_checkpoint_name == "tiny"
    assert "legacy" in embeddings.of(sd).refused


def test_a_generation_writes_ti_hashes_and_png_info_reads_them_back(ti_studio, folder, tmp_path):
    result = ti_studio.run(tiny_request(prompt="a mystyle cube", negative_prompt="(xlstyle:1.2), legacy blur"))
    digest = files.read(folder / "mystyle.safetensors", False).hash
    assert len(digest) == 12
    assert f'TI hashes: "mystyle: {digest}"' in result.infotexts[0]  # xlstyle does not fit: not used
    assert any("legacy.pt" in n and "--allow-pickle" in n for n in result.notices), result.notices
    def notes(text, where):
        return recall(PngMetadata(text, None, "parameters"), embeddings_dir=where).notes

    assert not any("Embedding" in n for n in notes(result.infotexts[0], folder))  # the same file: nothing to say
    changed = notes(result.infotexts[0].replace(digest, "0123456789ab"), folder)
    assert any("Embedding mystyle" in n and digest in n and "0123456789ab" in n for n in changed), changed
    missing = notes(result.infotexts[0], tmp_path)
    assert any("Embedding mystyle" in n and "not in the embeddings folder" in n for n in missing), missing


def test_a_file_added_later_is_used_at_once_never_a_stale_encoding(ti_studio, folder):
    request = tiny_request(prompt="a later cube")
    before = pixels(ti_studio.run(request).images[0])
    path = write_concept(folder, "later", count=2, seed=7)
    try:
        after = ti_studio.run(request)
        assert not np.array_equal(pixels(after.images[0]), before)
        assert "TI hashes" in after.infotexts[0]
    finally:
        path.unlink()
    assert np.array_equal(pixels(ti_studio.run(request).images[0]), before)


def test_the_a1111_listing_says_loaded_and_skipped_for_the_model_used_last(folder, sd):
    embeddings.attach(sd, "sd15", folder, False)
    listed = embeddings.listing(folder, False)
    assert listed["loaded"]["mystyle"] == {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                                           "shape": 32, "vectors": 3}
    assert set(listed["skipped"]) == {"wide", "xlstyle"} and listed["skipped"]["xlstyle"]["shape"] == 64
    assert "legacy" not in listed["loaded"] and "legacy" not in listed["skipped"]
