"""Every error the studio raises on purpose survives pickling (a Ray replica's error crosses to the
front door that way) with its type, message and fields: an unknown LoRA on a replica is the same
422 naming `lora` as on the local engine, never "Failed to deserialize exception"."""

from __future__ import annotations

import pickle
import threading

import pytest

from studio.errors import InvalidValue, StudioError, UnknownName
from studio.metadata import MetadataError
from studio.models import PresetFileError
from studio.web.sdapi.calls import Busy

DEFINED_ELSEWHERE = (MetadataError, PresetFileError, Busy)  # imported so that every_error() finds them

# How each class with its own __init__ is made; every other one takes a message.
MADE = {InvalidValue: ("steps", 999, "1 to 150"), UnknownName: ("lora", "nosuch", ["one", "two"])}


def every_error() -> list[type]:
    found, todo = [], [StudioError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: c.__qualname__)


@pytest.mark.parametrize("cls", every_error(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("dumps", [pickle.dumps, "cloudpickle"], ids=["pickle", "cloudpickle"])
def test_every_studio_error_pickles_with_its_message_and_fields(cls, dumps):
    if dumps == "cloudpickle":  # Ray pickles with its own copy of cloudpickle
        dumps = pytest.importorskip("ray.cloudpickle", reason="Ray (requirements-ray.txt) is not installed").dumps
    error = cls(*MADE.get(cls, (f"{cls.__name__}: a message for the artist",)))
    error.extra = threading.Lock()  # a field that cannot pickle is carried as its repr, never a failure
    again = pickle.loads(dumps(error))
    assert type(again) is cls and str(again) == str(error) and again.args == error.args
    assert {k: v for k, v in vars(again).items() if k != "extra"} == {k: v for k, v in vars(error).items() if k != "extra"}
    assert again.extra == repr(error.extra)


def test_the_classes_with_their_own_arguments_are_all_covered():
    own = [cls for cls in every_error() if "__init__" in vars(cls)]
    assert set(own) <= set(MADE), [c.__name__ for c in own]
    assert set(DEFINED_ELSEWHERE) < set(every_error())


def test_the_errors_module_shows_it_in_its_docs():
    import doctest

    from studio import errors

    failures, tried = doctest.testmod(errors)
    assert tried and not failures
