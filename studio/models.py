"""Model presets and model sources: what a `model` string in a request refers to.

A model is one of: a preset name from `presets/models/*.json` (including the offline `tiny` and
`tiny-xl`), a Hugging Face Hub id (`owner/name`), a local diffusers folder, or a single checkpoint
file. This module only *names* models; `loading.py` turns a source into a pipeline.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import naming
from .checkpoints import CHECKPOINT_SUFFIXES, GGUF_SUFFIXES, PICKLE_SUFFIXES, SAFE_SUFFIXES, file_hash, header_family
from .errors import InvalidValue, StudioError, UnknownName
from .families import FAMILIES, PreviewData, SizeRule, family, family_of_pipeline

PRESETS_DIR = Path(os.environ.get("STUDIO_PRESETS", Path(__file__).resolve().parent.parent / "presets"))
BUILTIN_PREFIX = "builtin:"
MAX_MODEL_CHARS = 1024
UNKNOWN_SIZE_RULE = SizeRule(multiple=8, low=64, high=2048, default=512)  # longer is no name or path (and the OS refuses such paths anyway)


@dataclass(frozen=True)
class Defaults:
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    sampler: str = "DPM++ 2M"
    schedule: str = "Automatic"


@dataclass(frozen=True)
class ModelPreset:
    name: str
    title: str
    source: str  # hub id, or builtin:<family> for the tiny random-weight models
    family: str
    defaults: Defaults
    aliases: tuple[str, ...] = ()
    size_range: tuple[int, int] | None = None  # None: the family's
    fp16_variant: bool = False  # the hub repo has *.fp16.safetensors (half the download)
    is_noise: bool = False  # random weights: say so wherever its images appear
    preview: PreviewData | None = None  # None: the family's
    order: int = 100  # position in the model dropdown
    guidance: str | None = None  # what its CFG scale drives (cfg, distilled, none); None: the family's
    # Other tools' names of this model: A1111's `Model:` (the checkpoint's file stem) and `Model hash:`
    # (the file's sha256, first 10 hex digits; or A1111's old 8-digit hash), as PNGs from A1111, Forge
    # and Civitai carry them: PNG Info finds the preset from these
    a1111_names: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    # The base model its add-ons (ControlNets, IP-Adapters) are made for, where that is not its family's
    # first one: SD-Turbo runs in the sd15 family's pipeline but is SD 2.1 inside (1024-wide text
    # features), so SD 1.5 ControlNets do not fit it. None: the family's name.
    base: str | None = None


@dataclass(frozen=True)
class ModelSource:
    """A resolved `model` string."""

    name: str  # what the infotext calls it: preset name, hub id, or file / folder name
    kind: str  # "builtin" | "hub" | "folder" | "single_file"
    ref: str  # builtin family, hub id, or absolute path
    family: str | None  # None until loaded for hub ids and files we cannot classify yet
    preset: ModelPreset | None = None
    pickle: bool = False  # a pickle checkpoint: refused unless the studio allows it

    @property
    def is_noise(self) -> bool:
        return bool(self.preset and self.preset.is_noise)

    @property
    def base(self) -> str | None:
        """What its add-ons must be made for (a family name, or a preset's own `base`)."""
        return (self.preset.base if self.preset else None) or self.family

    @property
    def size_range(self) -> tuple[int, int]:
        if self.preset and self.preset.size_range:
            return self.preset.size_range
        return (self.size_rule.low, self.size_rule.high)

    @property
    def size_rule(self) -> SizeRule:
        """The family's rule (multiples of 8 for SD); a model of a family not known yet: SD's."""
        return family(self.family).size if self.family else UNKNOWN_SIZE_RULE

    @property
    def defaults(self) -> Defaults:
        if self.preset:
            return self.preset.defaults
        if self.family:
            fam = family(self.family)
            sampler = Defaults.sampler if fam.samplers is None or Defaults.sampler in fam.samplers else fam.samplers[0]
            return Defaults(**{"width": fam.size.default, "height": fam.size.default, "sampler": sampler,
                               **fam.defaults})
        return Defaults()

    @property
    def guidance(self) -> str:
        """What the CFG scale drives for this model, known before it loads (for the page's label):
        the preset's word, else its family's default (real CFG for SD, distilled for FLUX)."""
        if self.preset and self.preset.guidance:
            return self.preset.guidance
        return family(self.family).default_guidance if self.family else "cfg"

    @property
    def preview(self) -> PreviewData | None:
        if self.preset and self.preset.preview:
            return self.preset.preview
        return family(self.family).latent.preview if self.family else None


class PresetFileError(StudioError):
    """A preset file is malformed; the message names the file and the key."""


def _preview(data: Mapping[str, Any], where: str) -> PreviewData:
    try:
        factors = tuple(tuple(float(v) for v in row) for row in data["latent_rgb_factors"])
        bias = tuple(float(v) for v in data.get("latent_rgb_bias", (0.0, 0.0, 0.0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise PresetFileError(f"{where}: preview needs latent_rgb_factors rows of numbers ({exc})") from None
    if any(len(row) != 3 for row in factors) or len(bias) != 3:
        raise PresetFileError(f"{where}: latent_rgb_factors rows and latent_rgb_bias need 3 values (R, G, B)")
    return PreviewData(factors, bias, data.get("taesd"))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetFileError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PresetFileError(f"{path}: must hold a JSON object")
    return data


def _size_range(value: Any, where: str) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise PresetFileError(f"{where}: size_range must be [min, max], got {value!r}") from None
    if not (8 <= low <= high) or low % 8 or high % 8:
        raise PresetFileError(f"{where}: size_range {value!r} must be multiples of 8 with min <= max")
    return (low, high)


GUIDANCE_KINDS = ("cfg", "distilled", "none")
# The CFG scales that mean something to each kind of guidance. A value outside was made for a model
# of another kind (SD's CFG 7 read as FLUX dev's distilled guidance, which is used near 3.5; a turbo
# model's 0 read as SD's CFG), so fitting settings to a model takes its recommended value instead.
# "none": the value is not used.
GUIDANCE_SENSE = {"cfg": (1.0, 30.0), "distilled": (1.0, 5.0)}


def _guidance(value: Any, where: str) -> str | None:
    if value is not None and value not in GUIDANCE_KINDS:
        raise PresetFileError(f"{where}: guidance {value!r} is not one of {list(GUIDANCE_KINDS)}")
    return value


def parse_preset(data: Mapping[str, Any], where: str) -> ModelPreset:
    """Build a preset from one JSON object; errors name the file and the key."""
    known = {f for f in ModelPreset.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PresetFileError(f"{where}: unknown keys {unknown}; allowed: {sorted(known)}")
    try:
        fam = data["family"]
        if fam not in FAMILIES:
            raise PresetFileError(f"{where}: family {fam!r} is not one of {sorted(FAMILIES)}")
        defaults_data = dict(data.get("defaults", {}))
        bad = sorted(set(defaults_data) - set(Defaults.__dataclass_fields__))
        if bad:
            raise PresetFileError(f"{where}: unknown defaults {bad}; allowed: {sorted(Defaults.__dataclass_fields__)}")
        return ModelPreset(
            name=str(data["name"]),
            title=str(data.get("title", data["name"])),
            source=str(data["source"]),
            family=fam,
            defaults=Defaults(**defaults_data),
            aliases=tuple(str(a) for a in data.get("aliases", ())),
            size_range=_size_range(data["size_range"], where) if "size_range" in data else None,
            fp16_variant=bool(data.get("fp16_variant", False)),
            is_noise=bool(data.get("is_noise", False)),
            preview=_preview(data["preview"], where) if "preview" in data else None,
            order=int(data.get("order", 100)),
            guidance=_guidance(data.get("guidance"), where),
            a1111_names=tuple(str(a) for a in data.get("a1111_names", ())),
            hashes=tuple(str(h).casefold() for h in data.get("hashes", ())),
            base=str(data["base"]) if "base" in data else None,
        )
    except KeyError as exc:
        raise PresetFileError(f"{where}: missing key {exc}") from None


@functools.cache
def presets(presets_dir: Path = PRESETS_DIR) -> Mapping[str, ModelPreset]:
    """All model presets by lower-case name, read once from `presets/models/*.json`."""
    found = [parse_preset(_read_json(path), str(path)) for path in (presets_dir / "models").glob("*.json")]
    return {p.name.casefold(): p for p in sorted(found, key=lambda p: (p.order, p.name))}


def preset_names() -> list[str]:
    return [p.name for p in presets().values()]


def find_preset(name: str) -> ModelPreset | None:
    key = naming.fold(name)
    for preset in presets().values():
        if key in (naming.fold(n) for n in (preset.name, *preset.aliases)):
            return preset
    return None


def preset_of_file(name: str | None, model_hash: str | None) -> ModelPreset | None:
    """The preset another tool's checkpoint is (A1111's `Model:` file stem, or `Model hash:`), by the
    names and hashes the presets declare."""
    key = naming.fold(name) if isinstance(name, str) and name.strip() else None
    digest = model_hash.strip().casefold() if isinstance(model_hash, str) and model_hash.strip() else None
    for preset in presets().values():
        if (key is not None and key in (naming.fold(n) for n in preset.a1111_names)) or digest in preset.hashes:
            return preset
    return None


def source_for_preset(preset: ModelPreset) -> ModelSource:
    if preset.source.startswith(BUILTIN_PREFIX):
        return ModelSource(preset.name, "builtin", preset.source[len(BUILTIN_PREFIX):], preset.family, preset)
    return ModelSource(preset.name, "hub", preset.source, preset.family, preset)


def _folder_family(folder: Path) -> str | None:
    try:
        class_name = json.loads((folder / "model_index.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None
    fam = family_of_pipeline(class_name) if isinstance(class_name, str) else None
    return fam.name if fam else None


def hub_id(text: object) -> bool:
    """`owner/name` written as a relative path is always a Hub id, never a folder of the working directory
    (a shared studio would otherwise load, and answer differently for, whatever lies there). A Hub id has
    no `.`/`..` part and no checkpoint suffix: `someone/model.safetensors` is a file path, refused on a
    shared studio unless it is inside its folders. A local folder is named `./owner/name` or by a full path."""
    if not isinstance(text, str) or not naming.is_hub_id(text) or text.startswith(".") or ".." in text:
        return False
    return not text.lower().endswith(CHECKPOINT_SUFFIXES)


def resolve_model(model: str) -> ModelSource:
    try:
        return _resolve_model(model)
    except OSError as exc:  # a name the OS refuses as a path (too long, bad characters...)
        raise InvalidValue("model", model if len(str(model)) <= 60 else f"<{len(str(model))} characters>",
                           f"a preset, hub id or readable path ({exc.strerror or exc})") from None


def _resolve_model(model: str) -> ModelSource:
    """Turn a request's `model` string into a source, or raise an error that lists the choices."""
    if not isinstance(model, str) or not model.strip():
        raise UnknownName("model", model, _model_choices())
    preset = find_preset(model)
    if preset:
        return source_for_preset(preset)
    text = model.strip()
    if len(text) > MAX_MODEL_CHARS or "\x00" in text:
        raise InvalidValue("model", f"<{len(text)} characters>" if len(text) > 60 else text,
                           f"a preset, hub id or path of at most {MAX_MODEL_CHARS} characters")
    if hub_id(text):  # before the file system is asked anything: the same answer whatever lies there
        return ModelSource(text, "hub", text, None)
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InvalidValue("model", text, "a diffusers folder must contain model_index.json")
        return ModelSource(path.name, "folder", str(path.resolve()), _folder_family(path))
    if suffix in CHECKPOINT_SUFFIXES:
        if not path.is_file():
            raise InvalidValue("model", text, "an existing checkpoint file (no such file)")
        pickle = suffix in PICKLE_SUFFIXES  # never opened before loading, and then only if allowed
        return ModelSource(path.stem, "single_file", str(path.resolve()), None if pickle else header_family(path),
                           pickle=pickle)
    raise UnknownName("model", model, _model_choices())


def _model_choices() -> list[str]:
    return preset_names() + [
        "a Hugging Face Hub id (owner/name)", "a local diffusers folder", "a .safetensors or .gguf checkpoint file"
    ]


MAX_LOCAL_MODELS = 500  # a models folder is listed, never crawled without end


def local_models(folder: str | Path | None, allow_pickle: bool = False) -> list[tuple[str, str]]:
    """Checkpoints found in a models folder, as (label, path) pairs sorted by label.

    Single files (`.safetensors`, `.gguf`; pickle files too when they are allowed) and diffusers folders
    (holding model_index.json), at the top level or one folder down, as A1111's
    models/Stable-diffusion folder is usually organised. A missing folder lists nothing.
    """
    if folder is None:
        return []
    root = Path(os.path.abspath(Path(folder).expanduser()))  # full paths: `models/x` would be a Hub id
    if not root.is_dir():
        return []
    suffixes = SAFE_SUFFIXES + GGUF_SUFFIXES + (PICKLE_SUFFIXES if allow_pickle else ())
    found: list[tuple[str, str]] = []
    for path in sorted(root.glob("*")) + sorted(root.glob("*/*")):
        if len(found) >= MAX_LOCAL_MODELS:
            break
        if path.name.startswith("."):
            continue
        if (path.is_file() and path.suffix.lower() in suffixes) or (path.is_dir() and (path / "model_index.json").is_file()):
            found.append((path.relative_to(root).as_posix(), str(path.resolve())))
    return sorted(found)


def find_checkpoint(name: str | None, model_hash: str | None, models_dir: str | Path | None,
                    allow_pickle: bool = False) -> str | None:
    """The model a PNG names (A1111 writes `Model: <file stem>, Model hash: <sha256[:10]>`): a preset
    or hub id by name, a checkpoint of the models folder by name, a preset whose `a1111_names` or
    `hashes` say it is that file, else a checkpoint of the folder by hash. None if nothing here
    matches."""
    if isinstance(name, str) and name.strip():
        preset = find_preset(name)
        if preset:
            return preset.name
        if naming.is_hub_id(name.strip()):
            return name.strip()
    local = local_models(models_dir, allow_pickle)
    key = naming.fold(name) if isinstance(name, str) else None
    for label, path in local:
        stem = label.rsplit(".", 1)[0] if Path(path).is_file() else label
        if key is not None and key in (naming.fold(stem), naming.fold(Path(stem).name), naming.fold(label)):
            return path
    known = preset_of_file(name, model_hash)  # a well-known file (v1-5-pruned-emaonly): its preset
    if known is not None:
        return known.name
    if isinstance(model_hash, str) and model_hash.strip():
        wanted = model_hash.strip().casefold()
        for _, path in local:
            if Path(path).is_file() and file_hash(path, len(wanted)).casefold() == wanted:
                return path
    return None
