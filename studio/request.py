"""The generation request: one frozen, self-validating dataclass that every door maps onto.

Its fields are the request-scope fields of the field table (`studio/fields.py`), in the table's
order, made by `request_class`. Construction validates and normalises: the model first (its
preset gives the defaults of steps, CFG, size and sampler left out, and the size range), then each
field by its kind, then the rules between fields below.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import loras, prompts, references, samplers
from .errors import InvalidValue
from .families import FAMILIES, family
from .fields import DEFAULT_MODEL, FROM_MODEL, MAX_SEED, SIZE_FROM, TABLE, Context, FieldTable, describe_image
from .models import ModelSource, resolve_model
from .tasks import TASKS, detail, outpaint, plan_passes
from . import variation_fields
from .upscalers import face_fields
from .validation import int_in_range

from .request_fields import RequestFields

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations only, so 3.10 still runs this module

__all__ = ["GenerationRequest", "request_class", "DEFAULT_MODEL", "MAX_SEED"]


INPUT_PICTURES = ("init_image", "mask", "references", "upscale_image", "outpaint_image")  # input pictures, by field


def _given(request: Any, name: str) -> bool:
    value = getattr(request, name)
    return bool(value) if isinstance(value, tuple) else value is not None


def _task_and_images(request: Any, context: Context) -> None:
    """The task is explicit or follows from the images; it gets exactly the images it needs."""
    given = [name for name in INPUT_PICTURES if _given(request, name)]
    if request.task is None:
        request._set("task", "edit" if "references" in given else "upscale" if "upscale_image" in given
                     else "outpaint" if "outpaint_image" in given else "inpaint" if "mask" in given
                     else "img2img" if given else "txt2img")
    task = TASKS[request.task]
    for name in task.needs:
        if not _given(request, name):
            raise InvalidValue(name, None, f"an image: task {task.name} needs {' and '.join(task.needs)}")
    for name in given:
        if name not in task.needs:
            takes = f"only {' and '.join(task.needs)}" if task.needs else "no image"
            raise InvalidValue(name, "an image", f"none: task {task.name} takes {takes}")


def sampler_kind(family_name: str | None) -> str:
    """The sampler registry of a model's family (SD's for a model whose family is not known yet)."""
    return family(family_name).sampler_kind if family_name else samplers.DIFFUSION


def family_sampler_names(family_name: str | None) -> list[str]:
    """The samplers a model's family can run: its kind's, narrowed by the family where it says so."""
    names = samplers.sampler_names(sampler_kind(family_name))
    only = family(family_name).samplers if family_name else None
    return [n for n in names if only is None or n in only]


def _sampler(request: Any, context: Context) -> None:
    """Sampler and schedule resolve together (an old combined name carries its schedule)."""
    fam = context.source.family
    choice = samplers.resolve(request.sampler, request.schedule, sampler_kind(fam))
    request._set("sampler", choice.sampler.name)
    request._set("schedule", choice.schedule.name)
    supported = family(fam).samplers if fam else None
    if supported is not None and choice.sampler.name not in supported:
        raise InvalidValue("sampler", request.sampler, f"for the {fam} family: " + ", ".join(supported))


def _hires(request: Any, context: Context) -> None:
    if not request.hires:
        return
    if request.task != "txt2img":
        raise InvalidValue("hires", True, "hires fix is for text to image (task txt2img)")

    low, high = context.source.size_range
    for name, value in zip(("width", "height"), request.hires_size):
        if value > high:
            raise InvalidValue("hires_scale", request.hires_scale,
                               f"a scale keeping the {name} within {high} for model {context.source.name} "
                               f"({getattr(request, name)} x {request.hires_scale:g} = {value})")


def _family_tasks(request: Any, context: Context) -> None:
    """Each pass's task is one the model's family has a pipeline for (asked of the family); an edit
    model is given a reference, and no more references than it reads."""
    if not context.source.family or not TASKS[request.task].uses_model:
        return
    fam, name = family(context.source.family), context.source.name
    offered = [task for task in TASKS if task in fam.pipelines]
    if fam.needs_references and request.task != "edit":
        raise InvalidValue("references", "none", f"at least one picture: {name} edits pictures (task edit)")
    pipeline = request.pass_tasks()[0]  # the family pipeline its pass runs (outpaint: the inpaint one)
    if pipeline not in fam.pipelines:
        editors = ", ".join(sorted(f.title for f in FAMILIES.values() if f.references))
        why = f" ({name} does not edit by instruction; models that do: {editors})" if request.task == "edit" else ""
        why = why or (f" (it paints with the family's {pipeline} pipeline: {fam.title} has none)"
                      if pipeline != request.task else "")
        raise InvalidValue("task", request.task, f"{' or '.join(offered)} for model {name}{why}")
    if request.hires and "img2img" not in fam.pipelines:
        raise InvalidValue("hires", True, f"off for model {name}: its family has no image-to-image pass to repaint with")
    if request.task == "edit" and len(request.references) > fam.references:
        raise InvalidValue("references", f"{len(request.references)} pictures", f"at most {fam.references} for {name}")


def _edit_size(request: Any, context: Context) -> None:
    """An edit's output size: the first reference's aspect at the model's own size (as the edit
    pipelines size theirs), unless size_from says the width and height stand."""
    if request.task != "edit" or request.size_from != SIZE_FROM[0]:
        return
    defaults = request.FIELDS.model_defaults(context.source)
    area = int(defaults.get("width") or context.source.size_rule.default) * int(
        defaults.get("height") or context.source.size_rule.default)
    low, high = context.source.size_range
    width, height = references.fitted_size(request.references[0].image, area, context.source.size_rule.multiple,
                                           low, high)
    request._set("width", width)
    request._set("height", height)


def _true_cfg(request: Any, context: Context) -> None:
    fam = family(context.source.family) if context.source.family else None
    if request.true_cfg_scale != 1 and fam is not None and not fam.true_cfg:
        raise InvalidValue("true_cfg_scale", request.true_cfg_scale,
                           f"1 for the {fam.name} family (its CFG scale is real CFG already)")


def _lora_tags(request: Any, context: Context) -> None:
    loras.extract(request.prompt)  # a <lora:name:weight> tag with a bad weight is refused here


# Text encoding in the cost: each family's `text_encoders` says how a prompt's length reaches them.
# A chunk through one encoder, in megapixel-steps. In FLOPs a CLIP pass over 77 tokens is a few per cent
# of a 512 px UNet step, but every chunk also lengthens the cross-attention context each step reads,
# and issue 28 saw 626 chunks hold a device 150 s (0.24 s a chunk, about a megapixel-step at the
# families' 0.3 s). Half a megapixel-step (two 512 px steps) per chunk per encoder sits between the two.
# A prompt's first chunk is free: the megapixel-step price already covers an ordinary prompt.
CHUNK_COST = 0.5


def prompt_chunks(request: Any) -> dict[str, int]:
    """Each prompt field's 75-token chunks, estimated from its text (`prompts.estimate_chunks`)."""
    return {name: prompts.estimate_chunks(getattr(request, name), request.prompt_syntax)
            for name in ("prompt", "negative_prompt")}


def _sd_upscale(request: Any, context: Context) -> None:
    """SD upscale repaints tiles of width x height over a result at least that large, one picture at a time."""
    if not request.sd_upscale or request.task != "img2img":
        return
    from .tasks import tiled, upscale

    if request.batch_size != 1:
        raise InvalidValue("batch_size", request.batch_size, "1 with SD upscale (it repaints one picture in tiles)")
    width, height = tiled.target_size(request)
    if width < request.width or height < request.height:
        raise InvalidValue("sd_upscale_scale", request.sd_upscale_scale,
                           f"a scale making the picture at least one tile ({request.width}x{request.height}; it "
                           f"would be {width}x{height}): a larger scale, or a smaller width and height")
    if max(width, height) > upscale.MAX_SIDE or width * height > upscale.MAX_OUTPUT_PIXELS:
        raise InvalidValue("sd_upscale_scale", f"{width}x{height}", f"a result of at most "
                           f"{upscale.MAX_OUTPUT_PIXELS} pixels ({upscale.MAX_SIDE} a side)")
    if request.sd_upscale_overlap >= min(request.width, request.height):
        raise InvalidValue("sd_upscale_overlap", request.sd_upscale_overlap,
                           f"less than a tile's side ({min(request.width, request.height)})")


def _upscale(request: Any, context: Context) -> None:
    """An upscale makes one picture no larger than the limits, both sides of a size given together."""
    if request.task != "upscale":
        return
    from .tasks import upscale

    if request.batch_size != 1:
        raise InvalidValue("batch_size", request.batch_size, "1 for an upscale (it makes one picture)")
    if bool(request.upscale_width) != bool(request.upscale_height):
        raise InvalidValue("upscale_height" if request.upscale_width else "upscale_width", 0,
                           "both width and height (a size), or neither (scale by the factor)")
    width, height = upscale.target_size(request)
    if max(width, height) > upscale.MAX_SIDE or width * height > upscale.MAX_OUTPUT_PIXELS:
        field = "upscale_width" if request.upscale_width else "upscale_by"
        raise InvalidValue(field, f"{width}x{height}", f"a result of at most {upscale.MAX_OUTPUT_PIXELS} pixels "
                                                       f"({upscale.MAX_SIDE} a side)")


RULES: tuple[Callable[[Any, Context], None], ...] = (_task_and_images, _family_tasks, _edit_size, _sampler, _hires,
                                                     _true_cfg, _lora_tags, _upscale, _sd_upscale,
                                                     outpaint.check, detail.check, face_fields.check,
                                                     variation_fields.check)


class RequestBase(RequestFields):
    """Behaviour shared by request classes; the fields come from the table (`request_class`). The base
    only annotates them for type checkers (it is no dataclass: the table's fields are the class's)."""

    FIELDS: FieldTable = TABLE
    _source: ModelSource  # the model resolved once, in __post_init__ (not a field)

    def __post_init__(self) -> None:
        # 1. The model first: the defaults and the size range depend on it.
        source = resolve_model(self.model)
        self._set("_source", source)  # resolved once (a path costs file-system calls); not a field
        context = Context(source)
        # 2. Settings left out take the model's preset defaults.
        for name, value in self.FIELDS.model_defaults(source).items():
            if getattr(self, name) is None:
                self._set(name, value)
        # 3. Each field by its kind, in the table's order.
        for f in self.FIELDS.request:
            self._set(f.name, f.validate(getattr(self, f.name), context))
        # 4. The rules between fields.
        for rule in RULES:
            rule(self, context)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising inside __post_init__ of a frozen class

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **images: Any) -> Self:
        """A request from settings by field name, as the page, the API and PNG Info hold them:
        per-click settings (batch count) are not the request's, and None means "the default"."""
        table = cls.FIELDS
        fields = {name: value for name, value in settings.items()
                  if name in table and table[name].scope == "request" and value is not None}
        return cls(**{**fields, **images})

    @classmethod
    def for_model(cls, model: str = DEFAULT_MODEL, **fields: Any) -> Self:
        """A request on `model` (its preset's steps, CFG, size and sampler unless given)."""
        return cls(model=model, **fields)

    @property
    def source(self) -> ModelSource:
        return self._source

    @property
    def sampler_choice(self) -> samplers.SamplerChoice:
        return samplers.resolve(self.sampler, self.schedule, sampler_kind(self.source.family))

    def cost(self) -> float:
        """What this request asks of the device, in megapixel-steps: each pass's pixels x the steps it
        runs x the batch (hires fix adds its larger pass). A 512 px SD 1.5 image at 25 steps is 6.6."""
        passes = 2 if self.true_cfg_active else 1  # FLUX's real CFG: two transformer passes a step
        steps = passes * self.batch_size * sum(self.pass_costs()) / 1e6
        return steps + self.encoding_cost() + self.preprocessing_cost() + self.upscaling_cost() + \
            detail.detection_cost(self) + face_fields.cost(self)

    def upscaling_cost(self) -> float:
        """Model upscalers' passes (upscalers/work.py): hires fix's over each image of the batch, an
        upscale's over its picture."""
        from . import upscalers
        from .tasks import upscale
        from .upscalers.work import model_work

        if self.task == "upscale":
            size = self.upscale_image.size
            return sum(model_work(size, upscale.target_size(self)) for name in upscale.upscalers_used(self)
                       if upscalers.is_model(name))
        if self.task == "img2img" and self.sd_upscale and upscalers.is_model(self.sd_upscale_upscaler):
            from .tasks import tiled

            return model_work(self.init_image.size, tiled.target_size(self))
        if not self.hires or not upscalers.is_model(self.hires_upscaler):
            return 0.0
        return self.batch_size * model_work((self.width, self.height), self.hires_size)

    def encoding_cost(self) -> float:
        """The prompts' chunks past each one's first, through each of the family's text encoders."""
        fam = self.source.family
        encoders, reads = family(fam).text_encoders if fam else (2, "chunks")
        if reads == "whole":
            return 0.0
        extra = sum(chunks - 1 for chunks in prompt_chunks(self).values())
        return encoders * extra * CHUNK_COST

    def preprocessing_cost(self) -> float:
        """Each active ControlNet unit's preprocessing: the pixels its module reads x its weight."""
        from .control import preprocessors

        size = (self.width, self.height)
        return sum(preprocessors.work(unit.image.size, unit.module, size, unit.resize_mode,
                                      None if unit.pixel_perfect else unit.processor_res)
                   for unit in getattr(self, "controlnets", ()) if unit.active() and unit.image is not None)

    def pass_costs(self) -> list[float]:
        """Each pass's pixels x its steps, in plan order (hires fix: the first pass, then the larger
        one): what a step of each pass costs relative to the others, for the cost and the ETA."""
        passes = plan_passes(self)
        passes = passes[:len(passes) - len(detail.passes(self))]  # the detailer's come last (detail.pass_costs)
        sizes = [(self.width, self.height)] * (len(passes) if self.sd_upscale and self.task == "img2img" else 1)
        sizes += [self.hires_size] if self.hires else []  # SD upscale: a tile per pass
        costs = [float(n * w * h) for n, (w, h) in zip(passes, sizes)]
        if self.task == "edit":  # every step also reads each reference's tokens (pipelines shrink big ones)
            area = self.width * self.height
            costs[0] *= 1 + sum(min(r.image.width * r.image.height, references.READ_PIXELS)
                                for r in self.references) / area
        return costs + detail.pass_costs(self)

    @property
    def true_cfg_active(self) -> bool:
        return self.true_cfg_scale > 1 and bool(self.negative_prompt.strip())

    @property
    def hires_size(self) -> tuple[int, int]:
        """The hires pass's size: the first pass's times the scale, in multiples of the family's
        size rule (8 for SD, 16 for FLUX)."""
        step = self.source.size_rule.multiple
        return tuple(step * round(v * self.hires_scale / step) for v in (self.width, self.height))  # type: ignore[return-value]

    def pass_tasks(self) -> tuple[str, ...]:
        """The kinds of pipeline pass it makes: its task's (outpaint: inpaint), and image to image for hires fix."""
        return (TASKS[self.task].pipeline or self.task, *(("img2img",) if self.hires else ()))

    def record(self) -> dict[str, Any]:
        """The request as JSON-safe data (saved in the PNG): the fields the table records; input
        images are described, not stored."""
        data: dict[str, Any] = {}
        for f in self.FIELDS.request:
            value = getattr(self, f.name)
            if f.kind == "image":
                data[f.name] = describe_image(value)
            elif f.items is not None:
                data[f.name] = [f.items.record(item) for item in value]
            elif f.record:
                data[f.name] = [list(v) if isinstance(v, tuple) else v for v in value] if isinstance(value, tuple) \
                    else value
        return data

    def with_seed(self) -> Self:
        """This request with -1 replaced by a freshly drawn seed (the one reported back), and a
        variation seed of -1 too where a strength uses it."""
        drawn = variation_fields.drawn(self)
        if self.seed != -1 and not drawn:
            return self
        seed = secrets.randbelow(MAX_SEED + 1) if self.seed == -1 else self.seed
        return dataclasses.replace(self, seed=seed, **drawn)

    def seeds(self) -> list[int]:
        """One seed per batch image: seed + i, as A1111 does (the seed for all, with a variation strength)."""
        if self.seed == -1:
            raise ValueError("draw the seed first (with_seed)")
        return [variation_fields.image_seed(self, i) for i in range(self.batch_size)]

    def batches(self, count: int) -> list[Self]:
        """`count` requests run one after another, as A1111's batch count: batch n starts at
        seed + n * batch_size, so every image of every batch has its own seed (wrapping past 2**32-1);
        with a variation strength the subseed counts on instead. A seed of -1 is drawn once, for the first batch."""
        low, high = self.FIELDS["batch_count"].range
        count = int_in_range("batch_count", count, int(low), int(high))
        first = self.with_seed()
        return [dataclasses.replace(first, **variation_fields.batch_start(first, n)) for n in range(count)]


@functools.lru_cache(maxsize=8)
def request_class(table: FieldTable, name: str = "GenerationRequest") -> type:
    """A frozen request dataclass with one field per request-scope field of `table` (made once per
    table). Fields whose default comes from the model default to None (filled in from the preset)."""
    spec = [(f.name, Any, dataclasses.field(default=None if f.default is FROM_MODEL else f.default))
            for f in table.request]
    namespace = {"FIELDS": table, "__module__": __name__, "__qualname__": name,
                 "__doc__": "Everything one generation needs; construction validates and normalises. "
                            "Fields: the request-scope entries of studio.fields.FIELDS."}
    return dataclasses.make_dataclass(name, spec, bases=(RequestBase,), frozen=True, namespace=namespace)


if TYPE_CHECKING:
    class GenerationRequest(RequestBase):
        """Everything one generation needs, as a type checker sees it: the fields typed as they are after
        construction (studio/request_fields.py, generated from the table by `python3 -m studio.docs --write`)."""

        def __init__(self, **fields: Any) -> None:  # the run-time class checks every value
            ...
else:
    GenerationRequest = request_class(TABLE)
