"""How prompts name textual-inversion embeddings, without a model: A1111's token-sequence match (longest
name first, never part of another word's tokens), the ids that replace a name, the page's Add button,
PNG Info's `TI hashes` notes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from studio.embeddings.used import parse_hashes, png_notes
from studio.embeddings.vocabulary import Vocabulary
from studio.web.networks_view import embedding_hint, with_word


def fake(name: str, count: int) -> SimpleNamespace:
    return SimpleNamespace(name=name, count=count, hash="0123456789ab")


def vocabulary() -> Vocabulary:
    # names as token ids: "ab" = (7, 8), "abc" = (7, 8, 9); "old" = (5,) is a refused file's
    loaded = (fake("ab", 2), fake("abc", 3))
    lookup = {7: (((7, 8, 9), 1, "abc"), ((7, 8), 0, "ab")), 5: (((5,), -1, "old"),)}
    return Vocabulary(32, loaded, refused={"old": "Embedding old.pt: pickled"}, lookup=lookup)  # type: ignore[arg-type]


def test_the_longest_name_wins_and_each_vector_gets_its_own_id():
    v = vocabulary()
    assert v.substitute([1, 7, 8, 9, 2]) == [1, -3, -4, -5, 2]  # "abc": vectors 2..4 of the table
    assert v.substitute([7, 8, 2]) == [-1, -2, 2]  # "ab"
    assert v.substitute([7, 2, 8]) == [7, 2, 8]  # not the whole name: words
    assert v.substitute([5, 1]) == [5, 1]  # a refused file's name stays words
    used, refused = v.named([7, 8, 1, 5, 7, 8, 9])
    assert [e.name for e in used] == ["ab", "abc"] and refused == ["old"]
    assert v.key == (("ab", "0123456789ab"), ("abc", "0123456789ab"))


def test_an_empty_vocabulary_changes_nothing():
    assert Vocabulary(32, ()).substitute([1, 2, 3]) == [1, 2, 3]


def test_the_add_button_appends_the_name_as_a1111s_cards_do():
    assert with_word("a cat", "mystyle") == "a cat, mystyle"
    assert with_word("", "mystyle") == "mystyle"
    assert with_word("a cat,", "mystyle") == "a cat, mystyle"
    with pytest.raises(gr.Error, match="Pick an embedding"):
        with_word("a cat", None)


def test_the_hint_names_the_folder_and_the_flag(tmp_path: Path):
    assert "--embeddings-dir" in embedding_hint(None, False)
    assert "no embeddings yet" in embedding_hint(tmp_path, False)
    (tmp_path / "old.pt").write_bytes(b"x")
    assert "not read: old" in embedding_hint(tmp_path, False)


def test_ti_hashes_are_read_back_with_a_note_for_each_missing_file(tmp_path: Path):
    assert parse_hashes("easyneg: 1a2b3c4d5e6f, bad-hands: 0011223344ff") == {"easyneg": "1a2b3c4d5e6f",
                                                                             "bad-hands": "0011223344ff"}
    notes = png_notes("easyneg: 1a2b3c4d5e6f", tmp_path, False)
    assert notes == ["Embedding easyneg (hash 1a2b3c4d5e6f): not in the embeddings folder; its name will be read "
                     "as words"]
    assert png_notes("", tmp_path, False) == []
