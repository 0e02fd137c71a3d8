"""Wildcards and dynamic prompts (studio/dynamic/): a template resolves per image from its seed, a batch
whose images differ is split so each gets its prompt, combinatorial mode makes every combination in
order up to its cap, names never leave the wildcards folder, files are measured before they are read,
and the infotext keeps the resolved prompt (restored) and the template (sd-dynamic-prompts' keys)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from studio import StudioConfig
from studio.dynamic import folder as folder_module
from studio.dynamic.expand import expand
from studio.dynamic.fields import MAX_COMBINATIONS
from studio.dynamic.folder import WildcardFolder, folder_for
from studio.dynamic.resolve import combinations, has_syntax, resolve
from studio.errors import InvalidValue, UnknownName
from studio.infotext import format_infotext, parse_infotext, request_fields
from studio.metadata import PngMetadata
from studio.pnginfo import recall
from studio.service.plan import build_requests, make_plan

BASE = {"model": "tiny", "steps": 4, "width": 64, "height": 64, "sampler": "Euler", "seed": 10}
COLORS = ["red", "green", "blue", "gold", "teal", "pink"]


@pytest.fixture
def wildcards(tmp_path) -> WildcardFolder:
    root = tmp_path / "wildcards"
    (root / "animals").mkdir(parents=True)
    (root / "color.txt").write_text("\n".join(COLORS) + "\n# a comment line\n\n")
    (root / "animals" / "pet.txt").write_text("cat\ndog\n")
    return WildcardFolder(root)


def plan(folder: WildcardFolder | None = None, **settings) -> list:
    return build_requests({**BASE, **settings}, wildcards=folder)


def images(requests: list) -> list[tuple[int, str, str]]:
    """(seed, prompt, negative prompt) of every image the requests make, in order."""
    return [(r.seed + i, r.prompt, r.negative_prompt) for r in requests for i in range(r.batch_size)]


def test_a_template_resolves_the_same_for_a_seed_and_differently_across_seeds(wildcards):
    template = "a __color__ {cube|ball|cone} with a __animals/pet__"
    assert resolve(template, 7, folder=wildcards) == resolve(template, 7, folder=wildcards)
    made = {resolve(template, seed, folder=wildcards) for seed in range(40)}
    assert len(made) > 5 and all(not has_syntax(prompt) for prompt in made)
    assert all(prompt.split()[1] in COLORS and prompt.split()[-1] in ("cat", "dog") for prompt in made)


def test_a_seed_gives_the_same_prompt_whatever_the_batch_and_each_image_its_own(wildcards):
    batch = images(plan(wildcards, prompt="a __color__ {cube|ball}", negative_prompt="{blur|noise|fog}",
                        batch_size=4, batch_count=2))
    assert [seed for seed, _, _ in batch] == list(range(10, 18))  # the seeds a plain batch has, in order
    for seed, prompt, negative in batch:
        alone = plan(wildcards, prompt="a __color__ {cube|ball}", negative_prompt="{blur|noise|fog}", seed=seed)
        assert images(alone) == [(seed, prompt, negative)]
    assert len({prompt for _, prompt, _ in batch}) > 1


def test_a_batch_is_split_only_where_its_images_differ_and_costs_the_same(wildcards):
    split = plan(wildcards, prompt="a __color__ cube", batch_size=8)
    plain = plan(wildcards, prompt="a red cube", batch_size=8)
    assert sum(r.batch_size for r in split) == 8 and len(split) > 1
    assert all(len({resolve("a __color__ cube", r.seed + i, folder=wildcards) for i in range(r.batch_size)}) == 1
               for r in split)  # each request's images share their prompt
    assert sum(r.cost() for r in split) == pytest.approx(sum(r.cost() for r in plain))
    same = plan(wildcards, prompt="a {red} cube", batch_size=4)  # one choice: the batch stays whole
    assert [(r.seed, r.batch_size, r.prompt) for r in same] == [(10, 4, "a red cube")]


def test_prompts_without_the_syntax_make_the_very_same_requests(wildcards):
    for prompt in ("a (red:1.2) cube # not a comment", "[cat:dog:0.5] [a|b] ^__^ snake__case", ""):
        settings = {**BASE, "prompt": prompt, "negative_prompt": "blur", "batch_size": 3, "batch_count": 2}
        from studio.request import GenerationRequest

        assert plan(wildcards, **settings) == GenerationRequest.from_settings(settings).batches(2)
        assert plan(wildcards, dynamic_prompts="combinatorial", **settings)[0].prompt == prompt


def test_combinatorial_makes_every_combination_in_order_one_image_each(wildcards):
    made = plan(wildcards, prompt="{a|b} __animals/pet__", dynamic_prompts="combinatorial", batch_size=3,
                batch_count=2)
    assert [(r.seed, r.batch_size, r.prompt) for r in made] == [
        (10, 1, "a cat"), (11, 1, "a dog"), (12, 1, "b cat"), (13, 1, "b dog"),
        (14, 1, "a cat"), (15, 1, "a dog"), (16, 1, "b cat"), (17, 1, "b dog")]
    assert {r.prompt_template for r in made} == {"{a|b} __animals/pet__"}


def test_combinatorial_is_refused_by_field_past_its_cap_before_any_work(wildcards):
    nine = "{" + "|".join("123456789") + "}"
    with pytest.raises(InvalidValue, match=f"^prompt: .*at most {MAX_COMBINATIONS} combinations"):
        plan(wildcards, prompt=f"{nine} {nine}", dynamic_prompts="combinatorial")  # 81
    with pytest.raises(InvalidValue, match="^batch_count: 9 .*at most 7 with 9 combinations"):
        plan(wildcards, prompt=nine, dynamic_prompts="combinatorial", batch_count=9)
    with pytest.raises(InvalidValue, match="^prompt: .*combinations"):  # a random choice inside: endless
        combinations("{~a|b}", MAX_COMBINATIONS)
    with pytest.raises(InvalidValue, match="dynamic_prompts"):
        plan(wildcards, prompt="{a|b}", dynamic_prompts="every")


@pytest.mark.parametrize("name", ["../secret", "animals/../../secret", "/etc/passwd", "C:/Windows/win", "\\\\server/x"])
def test_a_wildcard_name_never_leaves_the_folder(wildcards, name):
    (wildcards.root.parent / "secret.txt").write_text("leaked\n")
    with pytest.raises(InvalidValue, match="^prompt: .*inside the wildcards folder"):
        resolve(f"a __{name}__", 1, folder=wildcards)


def test_a_link_out_of_the_folder_is_followed_on_a_local_studio_only(wildcards):
    outside = wildcards.root.parent / "outside.txt"
    outside.write_text("leaked\n")
    os.symlink(outside, wildcards.root / "link.txt")
    with pytest.raises(UnknownName, match="__link__"):
        resolve("__link__", 1, folder=WildcardFolder(wildcards.root))  # shared: the path rule holds
    assert resolve("__link__", 1, folder=WildcardFolder(wildcards.root, follow_links=True)) == "leaked"
    config = StudioConfig(wildcards_dir=wildcards.root, allowed_roots=[wildcards.root])
    with pytest.raises(UnknownName):
        make_plan({**BASE, "prompt": "__link__"}, config)


def test_files_are_measured_before_they_are_read_and_counted(wildcards, monkeypatch):
    monkeypatch.setattr(folder_module, "MAX_FILE_BYTES", 8)
    opened = []
    monkeypatch.setattr(folder_module.Path, "open", lambda *a, **k: opened.append(a) or pytest.fail("read"))
    with pytest.raises(InvalidValue, match="^prompt: '__color__'.*at most 8 bytes"):
        resolve("__color__", 1, folder=wildcards)
    assert opened == []
    monkeypatch.undo()
    monkeypatch.setattr(folder_module, "MAX_LINES", 3)
    with pytest.raises(InvalidValue, match="at most 3 lines .*color.txt has 6"):
        resolve("__color__", 1, folder=wildcards)
    (wildcards.root / "long.txt").write_text("x" * 10_001 + "\n")
    with pytest.raises(InvalidValue, match="lines of at most 10000 characters"):
        resolve("__long__", 1, folder=WildcardFolder(wildcards.root))
    monkeypatch.setattr(folder_module, "MAX_FILES", 1)
    with pytest.raises(InvalidValue, match="^wildcards: .*at most 1 files"):
        resolve("__animals/pet__", 1, folder=WildcardFolder(wildcards.root))


def test_a_file_named_by_every_image_of_a_plan_is_read_once(wildcards, monkeypatch):
    reads = []
    read = WildcardFolder._read
    monkeypatch.setattr(WildcardFolder, "_read", lambda self, name: reads.append(name) or read(self, name))
    made = plan(wildcards, prompt="__color__ and __color__", batch_size=8, batch_count=4)
    assert sum(r.batch_size for r in made) == 32 and reads == ["color"]


def test_an_unknown_name_names_the_field_the_name_and_what_the_folder_has(wildcards):
    with pytest.raises(UnknownName) as caught:
        plan(wildcards, prompt="a cube", negative_prompt="__blurry__")
    assert caught.value.field == "negative_prompt" and caught.value.value == "__blurry__"
    assert caught.value.choices == ("__animals/pet__", "__color__")
    with pytest.raises(InvalidValue, match="^prompt: .*the library stops at character 3"):
        plan(wildcards, prompt="a {cube|ball")


def test_without_a_folder_a_wildcard_stays_text_and_choices_still_resolve(tmp_path):
    assert folder_for(tmp_path / "missing") is None
    made = plan(None, prompt="__init__ of a {cube|cube}")
    assert made[0].prompt == "__init__ of a cube" and made[0].prompt_template == "__init__ of a {cube|cube}"
    config = StudioConfig(wildcards_dir=tmp_path / "missing")
    assert make_plan({**BASE, "prompt": "__x__ {y}"}, config)[0].prompt == "__x__ y"


def test_a_file_naming_itself_stops_at_the_nesting_bound(wildcards):
    (wildcards.root / "loop.txt").write_text("again __loop__\n")
    with pytest.raises(InvalidValue, match="^prompt: .*nested at most"):
        resolve("__loop__", 1, folder=WildcardFolder(wildcards.root))
    (wildcards.root / "outer.txt").write_text("a __animals/pet__ in {__color__|a box}\n")
    assert resolve("__outer__", 2, folder=WildcardFolder(wildcards.root)).startswith("a ")


def test_the_infotext_keeps_the_resolved_prompt_and_the_template_and_restores_the_prompt(wildcards):
    request = plan(wildcards, prompt="a __color__, shiny {cube|ball}", negative_prompt="{blur|fog}")[0]
    text = format_infotext(request)
    info = parse_infotext(text)
    assert info.prompt == request.prompt and info.negative_prompt == request.negative_prompt
    assert info.params["Template"] == "a __color__, shiny {cube|ball}"
    assert info.params["Negative Template"] == "{blur|fog}"
    fields, _ = request_fields(info)
    assert fields["prompt"] == request.prompt and fields["prompt_template"] == ""  # never restored
    recalled = recall(PngMetadata(infotext=text, request=None, message=""))
    assert recalled.fields["prompt"] == request.prompt and "prompt_template" not in recalled.fields
    assert not any("Template" in note for note in recalled.notes)  # a key the studio reads
    again = plan(wildcards, **{k: v for k, v in recalled.fields.items() if k in ("prompt", "negative_prompt",
                                                                                     "seed")})
    assert again[0].prompt == request.prompt and again[0].prompt_template == ""


def test_the_extensions_own_template_lines_read_as_its_keys():
    text = "a red cat\nNegative prompt: fog\nSteps: 20, Sampler: Euler, Seed: 3\nTemplate: a __color__ cat\n" \
           "Negative Template: {fog|blur}"
    info = parse_infotext(text)
    assert (info.prompt, info.negative_prompt) == ("a red cat", "fog")
    assert info.params == {"Steps": "20", "Sampler": "Euler", "Seed": "3", "Template": "a __color__ cat",
                           "Negative Template": "{fog|blur}"}
    assert parse_infotext("Template: just a prompt").prompt == "Template: just a prompt"


def test_expand_leaves_an_empty_call_and_plain_requests_alone():
    assert expand([], "combinatorial") == []
    from support import tiny_request

    request = tiny_request(seed=5)
    assert expand([request]) == [request] and dataclasses.replace(request).prompt_template == ""


def test_a1111s_answer_lists_each_images_resolved_prompt(wildcards):
    import json

    from studio.web.sdapi import translate

    made = plan(wildcards, prompt="{a|b} __animals/pet__", dynamic_prompts="combinatorial")
    images = [{"seed": r.seed, "infotext": format_infotext(r)} for r in made]
    answer = json.loads(translate.info(made, images, {}, [], "tiny", "v", "0"))
    assert answer["all_prompts"] == ["a cat", "a dog", "b cat", "b dog"] and answer["all_seeds"] == [10, 11, 12, 13]
    assert json.loads(translate.info(made, images[:2], {}, [], "tiny", "v", "0"))["all_prompts"] == ["a cat", "a dog"]


def test_a_prompt_of_too_many_or_too_deep_choices_is_refused_before_it_is_parsed():
    with pytest.raises(InvalidValue, match="^prompt: .*at most 100 choices"):
        resolve("{a|b} " * 101, 1)
    with pytest.raises(InvalidValue, match="^negative_prompt: .*500 options"):
        resolve("{" + "|".join("x" * 502) + "}", 1, "negative_prompt")
    with pytest.raises(InvalidValue, match="^prompt: .*nested"):
        resolve("{" * 90 + "a|b" + "}" * 90, 1)
    assert resolve("{" * 8 + "a" + "}" * 8, 1) == "a"
    with pytest.raises(InvalidValue, match="^prompt: .*nested at most 8 deep"):
        resolve("{" * 9 + "a" + "}" * 9, 1)
