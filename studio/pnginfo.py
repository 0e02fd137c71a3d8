"""What a PNG asks to regenerate: its settings as field values the form and `/generate` accept.

Our PNGs carry the full request as JSON: every recorded field comes back, so the image regenerates
exactly. Other tools' PNGs (A1111, Forge, Civitai) carry A1111's infotext: the fields it names map
through the field table, and the fields it leaves out take the value their absence means there
(no hires fix, clip skip 1, no styles...). Their `Model` is looked up among the presets and the
models folder (by name, then by `Model hash`); when nothing matches, `model` is left out and a note
says which checkpoint the image wants. Every value is checked as a request would check it: a
hostile or broken one is left out with a note, never sent on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import embeddings, loras, naming, samplers
from .errors import StudioError
from .fields import FROM_MODEL, TABLE, Context, FieldTable
from .infotext import fields_from_params, parse_infotext, unused_params
from .metadata import PngMetadata
from .models import ModelSource, find_checkpoint, resolve_model
from .tasks import TASKS

BATCH_INDEX_KEY = "batch_index"  # in our request JSON: which image of the batch a PNG holds
# Other tools' schedules that are the model's own spacing: the studio's Automatic (A1111's API reads
# them so too: studio/web/sdapi/translate.py SCHEDULES).
MODEL_SPACING = ("simple", "normal")


@dataclass(frozen=True)
class Recalled:
    """A PNG's settings for the form and the API, and what the user should know about them."""

    message: str
    fields: dict[str, Any] = field(default_factory=dict)  # field name -> JSON-safe value
    notes: tuple[str, ...] = ()
    batch_index: int = 0  # the image of the regenerated batch that is this PNG's

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "fields": self.fields, "notes": list(self.notes),
                "batch_index": self.batch_index}


def recall(meta: PngMetadata, models_dir: str | Path | None = None, allow_pickle: bool = False,
           table: FieldTable = TABLE, loras_dir: str | Path | None = None,
           embeddings_dir: str | Path | None = None) -> Recalled:
    """The settings a PNG holds, checked, with notes."""
    if meta.request is not None:
        found, notes, index = _from_request(meta.request, table)
        model_hash = None
    elif meta.infotext is not None:
        info = parse_infotext(meta.infotext)
        found, notes = infotext_settings(info.params, table)
        found.update(prompt=info.prompt, negative_prompt=info.negative_prompt)
        notes += lora_notes(info.prompt, info.params.get("Lora hashes", ""), loras_dir)
        notes += embeddings.png_notes(info.params.get(embeddings.TI_HASHES_KEY, ""), embeddings_dir, allow_pickle)
        model_hash = info.params.get("Model hash")
        index = _int(info.params.get("Batch pos"), 0)
    else:
        return Recalled(meta.message)
    for f in table.restorable:  # what the PNG does not say, it says by leaving it out
        if f.name not in found and f.default is not FROM_MODEL and f.name != "model":
            found[f.name] = f.default
    source = _model(found, model_hash, models_dir, allow_pickle, notes)
    fields = _checked(found, source, table, notes)
    task = fields.get("task")
    if task in TASKS and TASKS[task].needs:
        pictures = "the reference pictures in its tab (the infotext names them by hash and size)" \
            if "references" in TASKS[task].needs else "the picture (and mask)"
        notes.append(f"Input images are not stored in PNGs: {TASKS[task].title} uses {pictures} already in the form.")
    if fields.get("batch_size", 1) > 1:
        notes.append(f"Image {index + 1} of a batch of {fields['batch_size']}: these settings make the whole "
                     f"batch again, this image at position {index + 1}.")
    return Recalled(meta.message, fields, tuple(notes), index)


def infotext_settings(params: Mapping[str, str], table: FieldTable = TABLE) -> tuple[dict[str, Any], list[str]]:
    """The fields an infotext's parameter line gives, read as the studio reads other tools' values
    (Forge's `Schedule type: Simple` is Automatic), and notes naming every key the studio does not use."""
    found, notes = fields_from_params(params, table)
    schedule = params.get("Schedule type", "")
    if schedule.casefold() in MODEL_SPACING:
        found["schedule"] = samplers.AUTOMATIC
        notes.append(f"Schedule type {schedule}: read as {samplers.AUTOMATIC} (the model's own spacing)")
    rng = params.get("RNG", "")
    if rng and rng.upper() not in ("CPU", "GPU"):
        notes.append(f"RNG {rng}: not a noise source here, the device's noise is used: the image may differ")
    unused = unused_params(params, table)
    if unused:
        pairs = "; ".join(f"{key}: {_short(value)}" for key, value in unused.items())
        notes.append(f"Not used by the studio (the image may differ): {pairs}")
    return found, notes


def lora_notes(prompt: str, hashes: str, loras_dir: str | Path | None) -> list[str]:
    """A note for each LoRA the image used (its prompt's tags, A1111's `Lora hashes`) that the loras
    folder does not have: Generate would refuse its tag."""
    named: dict[str, str] = {}
    for pair in hashes.split(","):
        name, sep, digest = pair.rpartition(":")
        if sep and name.strip():
            named[name.strip()] = digest.strip()
    for tag in loras.find_tags(prompt):
        named.setdefault(tag.name.strip(), "")
    have = loras.folder_loras(loras_dir)
    missing = [f"{_short(name)}" + (f" (hash {_short(digest)})" if digest else "")
               for name, digest in named.items() if name and name not in have and not naming.is_hub_id(name)]
    if not missing:
        return []
    where = "the loras folder" if loras_dir is not None else "a loras folder (the studio has none: --loras)"
    return [f"LoRA {', '.join(missing)}: not in {where}; add the file or take its <lora:...> tag out of the prompt"]


def _short(text: Any, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _from_request(data: Mapping[str, Any], table: FieldTable) -> tuple[dict[str, Any], list[str], int]:
    found = {f.name: data[f.name] for f in table.restorable if f.name in data}
    if "task" not in data:  # written before the task was a field: it followed from the images
        found["task"] = "inpaint" if data.get("mask") else "img2img" if data.get("init_image") else "txt2img"
    index = data.get(BATCH_INDEX_KEY, 0)
    return found, [], index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else 0


def _model(found: dict[str, Any], model_hash: Any, models_dir: Any, allow_pickle: bool,
           notes: list[str]) -> ModelSource | None:
    """The model the PNG names, if this studio has it; otherwise `model` is left out and a note
    says which checkpoint the image was made with."""
    name = found.pop("model", None)
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        source = resolve_model(name)
        found["model"] = name
        return source
    except StudioError:
        pass
    match = find_checkpoint(name, model_hash if isinstance(model_hash, str) else None, models_dir, allow_pickle)
    wanted = f"{name[:80]!r}" + (f" (hash {_short(model_hash, 20)})" if model_hash else "")
    if match is None:
        notes.append(f"This image was made with the checkpoint {wanted}, which is not in the presets or the "
                     "models folder: the form keeps its current model.")
        return None
    found["model"] = match
    source = resolve_model(match)
    if naming.fold(match) != naming.fold(name):
        where = f"the {source.name} preset" if source.preset else f"{match} in the models folder"
        notes.append(f"The checkpoint {wanted} is {where}: the form takes it.")
    return source


def checked_settings(found: Any, table: FieldTable = TABLE) -> tuple[dict[str, Any], list[str]]:
    """Settings from anywhere (a page's JSON, say) as a request would accept them, with notes for
    what was left out."""
    notes: list[str] = []
    if not isinstance(found, dict):
        return {}, ["the settings are not a JSON object: nothing was used"]
    source = None
    if isinstance(found.get("model"), str):
        try:
            source = resolve_model(found["model"])
        except StudioError as exc:
            notes.append(f"{exc} (left as it is in the form)")
            found = {k: v for k, v in found.items() if k != "model"}
    return _checked(dict(found), source, table, notes), notes


def _checked(found: dict[str, Any], source: ModelSource | None, table: FieldTable, notes: list[str]) -> dict:
    """Each value as a request would accept it; the others are left out with a note."""
    context = Context(source or ModelSource("the image's model", "hub", "the image's model", None))
    fields: dict[str, Any] = {}
    for name, value in found.items():
        f = table.by_name.get(name)
        if f is None or not (f.record or f.scope == "run"):
            continue
        try:
            value = f.validate(value, context)
        except StudioError as exc:
            notes.append(f"{exc} (left as it is in the form)")
            continue
        fields[name] = _json_safe(value)
    if "sampler" in fields:
        _sampler(fields, notes)
    return fields


def _sampler(fields: dict[str, Any], notes: list[str]) -> None:
    """Sampler and schedule as the registry names them; a schedule this sampler cannot do here
    (A1111's Euler a + Karras, say) gives way to Automatic, with a note."""
    schedule = fields.get("schedule", samplers.AUTOMATIC)
    try:
        choice = samplers.resolve(fields["sampler"], schedule)
    except StudioError as exc:
        try:
            choice = samplers.resolve(fields["sampler"], samplers.AUTOMATIC)
            notes.append(f"{exc}: the schedule {samplers.AUTOMATIC} is used instead, so the image may differ")
        except StudioError as exc:
            notes.append(f"{exc} (left as it is in the form)")
            fields.pop("sampler", None)
            fields.pop("schedule", None)
            return
    fields["sampler"], fields["schedule"] = choice.sampler.name, choice.schedule.name


def _json_safe(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_safe(v) for v in value]
    return value
