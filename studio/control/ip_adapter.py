"""IP-Adapters on a loaded model's own denoiser (SD's UNet, FLUX's transformer): loaded once each
(diffusers' `load_ip_adapter`), put in for a generation and taken out after it, so that a generation
without image prompts runs the denoiser's own attention processors, the very objects it had: the
image without an IP-Adapter, bit for bit.

Each image prompt is a slot: its adapter's key/value layers (shared, never copied when two prompts
use the same adapter) and its own weight, so every reference picture is weighted on its own, as two
IP-Adapter units are in A1111. A prompt of weight 0 takes no slot and costs nothing.

The pictures are encoded here, once per generation, by the CLIP vision model the adapter was made for
(read from the adapter's own projection layer), and handed to every pass as `ip_adapter_image_embeds`.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from PIL import Image

from ..cache import LRUCache
from ..devices import DeviceChoice
from ..errors import InvalidValue, ModelLoadError
from ..hub import hub_or_cache, plain
from ..loading import LoadedModel, call_parameters
from ..tiny import TINY_SEED
from .folder import resolve
from .image_prompts import A1111_MODULES, ImagePrompt

BUILTIN = "builtin:ip-adapter/"  # + a family: the tiny models' random-weight adapter
TINY_ENCODER = "builtin:image-encoder"
TINY_EMBEDS = 24  # the tiny image encoder's embedding width
# The adapters known by name: A1111's (h94/IP-Adapter) and XLabs' FLUX one, as (repo, file).
KNOWN = {name: ("h94/IP-Adapter", f"{'sdxl_models' if 'sdxl' in name else 'models'}/{name}.safetensors")
         for name in A1111_MODULES}
KNOWN["XLabs-AI/flux-ip-adapter"] = ("XLabs-AI/flux-ip-adapter", "ip_adapter.safetensors")
# The image encoder an adapter reads, by what its projection takes: the pictures' embeddings or the
# encoder's hidden states ("plus" adapters), and their width.
ENCODERS = {("embeds", 1024): "h94/IP-Adapter:models/image_encoder", ("hidden", 1280): "h94/IP-Adapter:models/image_encoder",
            ("embeds", 1280): "h94/IP-Adapter:sdxl_models/image_encoder",
            ("hidden", 1664): "h94/IP-Adapter:sdxl_models/image_encoder",
            ("embeds", 768): "openai/clip-vit-large-patch14",  # XLabs' FLUX adapter
            ("embeds", TINY_EMBEDS): TINY_ENCODER}
ALLOWED = ("an IP-Adapter: " + ", ".join(sorted(KNOWN)) + ", a .safetensors or .bin file, or builtin:ip-adapter/"
           "sd15, sdxl or flux")


@dataclass
class Adapter:
    ref: str
    keys: dict[str, Any]  # attention processor name -> this adapter's to_k_ip / to_v_ip layers
    values: dict[str, Any]
    containers: dict[str, Any]  # processor name -> an IP-Adapter processor to fill with slots
    projection: Any  # the picture embedding -> image tokens layer
    reads: str  # "embeds" or "hidden"
    encoder: str


def takes_image(name: str, denoiser: Any) -> bool:
    """Whether diffusers gives this attention processor IP-Adapter layers: SD's cross-attention ones
    (attn2), FLUX's double-stream blocks."""
    if hasattr(denoiser.config, "cross_attention_dim"):
        return name.endswith("attn2.processor")
    return not name.startswith("single_transformer_blocks")


def random_adapter(denoiser: Any) -> dict[str, dict[str, torch.Tensor]]:
    """A random-weight IP-Adapter in diffusers' layout for any UNet or FLUX transformer, reading the
    tiny image encoder's embeddings (deterministic; the benchmark's mid-size model has one too)."""
    unet = hasattr(denoiser.config, "cross_attention_dim")
    cross = denoiser.config.cross_attention_dim if unet else denoiser.config.joint_attention_dim
    generator = torch.Generator().manual_seed(TINY_SEED + 2)

    def weights(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.3

    image_proj = {"proj.weight": weights(4 * cross, TINY_EMBEDS), "proj.bias": weights(4 * cross),
                  "norm.weight": torch.ones(cross), "norm.bias": torch.zeros(cross)}
    ip_adapter, key_id = {}, 1 if unet else 0  # diffusers reads SD's as 1, 3, 5, ..., FLUX's as 0, 1, 2, ...
    for name in denoiser.attn_processors:
        if takes_image(name, denoiser):
            hidden = denoiser.get_submodule(name[: -len(".processor")]).to_k.out_features
            for kind in ("k", "v"):
                ip_adapter[f"{key_id}.to_{kind}_ip.weight"] = weights(hidden, cross)
                if not unet:
                    ip_adapter[f"{key_id}.to_{kind}_ip.bias"] = weights(hidden)
            key_id += 2 if unet else 1
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def build_tiny_adapter(family: str) -> dict[str, dict[str, torch.Tensor]]:
    """The tiny model's random-weight IP-Adapter for a family."""
    from ..families import family as family_of

    if family not in ("sd15", "sdxl", "flux"):
        raise InvalidValue("image prompt model", BUILTIN + family, ALLOWED)
    fam = family_of(family)
    return random_adapter(getattr(fam.tiny(), fam.denoiser))


def save_adapter(state: dict[str, dict[str, torch.Tensor]], path: Any) -> None:
    """As the published .safetensors files hold them: `image_proj.*` and `ip_adapter.*` keys."""
    from safetensors.torch import save_file

    save_file({f"{part}.{key}": tensor.contiguous() for part, tensors in state.items()
               for key, tensor in tensors.items()}, str(path))


def build_tiny_encoder() -> Any:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 3)
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=40, intermediate_size=64, projection_dim=TINY_EMBEDS, num_hidden_layers=2,
            num_attention_heads=4, image_size=32, patch_size=8))
    return model.eval()


def _split(tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """A .safetensors file's keys in diffusers' two parts, as its loader names them (h94's `image_proj.`
    and `ip_adapter.`; XLabs' `ip_adapter_proj_model.` and `double_blocks.N.processor.*_proj`)."""
    parts: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, tensor in tensors.items():
        first, _, rest = key.partition(".")
        if first in ("image_proj", "ip_adapter_proj_model"):
            parts["image_proj"][rest] = tensor
        elif first in ("ip_adapter", "double_blocks"):
            parts["ip_adapter"][rest.replace("ip_adapter_double_stream_k_proj", "to_k_ip").replace(
                "ip_adapter_double_stream_v_proj", "to_v_ip").replace("processor.", "")] = tensor
    return parts


def read_adapter(ref: str, field: str) -> dict[str, dict[str, torch.Tensor]]:
    """An adapter's weights as {"image_proj": ..., "ip_adapter": ...}: a known name (from the Hub),
    a .safetensors / .bin file, or a builtin."""
    if ref.startswith(BUILTIN):
        return build_tiny_adapter(ref[len(BUILTIN):])
    path = Path(ref).expanduser()
    if ref in KNOWN:
        from huggingface_hub import hf_hub_download

        repo, file = KNOWN[ref]
        path = Path(hub_or_cache(f"IP-Adapter {ref}", lambda local: hf_hub_download(
            repo, file, local_files_only=local)))
    elif not (path.is_file() and path.suffix in (".safetensors", ".bin")):
        raise InvalidValue(field, ref, ALLOWED)
    try:
        if path.suffix == ".bin":
            return torch.load(path, map_location="cpu", weights_only=True)
        from safetensors.torch import load_file

        return _split(load_file(path))
    except Exception as exc:  # a damaged or foreign file
        raise ModelLoadError(f"IP-Adapter {Path(ref).name} could not be read: {plain(exc)}") from exc


def check_fits(state: dict, ref: str, denoiser: Any, model: str, field: str) -> None:
    """Refuse an adapter made for another family (SD 1.5's on SDXL) before it touches the denoiser."""
    proj, layers = state.get("image_proj") or {}, state.get("ip_adapter") or {}
    if not isinstance(proj, dict) or not isinstance(layers, dict) or not proj or not layers:
        raise InvalidValue(field, ref, "an IP-Adapter file (image_proj and ip_adapter weights)")
    if any("lora" in key for key in layers) or "proj.0.weight" in proj:
        raise InvalidValue(field, ref, "an IP-Adapter that reads CLIP pictures (FaceID ones need insightface)")
    if "proj.weight" in proj:  # diffusers' rule for the number of image tokens
        width = proj["proj.weight"].shape[0] // (16 if proj["proj.weight"].shape[0] == 65536 else 4)
    else:
        width = proj["proj_out.weight"].shape[0] if "proj_out.weight" in proj else None
    config = denoiser.config
    cross = config.cross_attention_dim if hasattr(config, "cross_attention_dim") else config.joint_attention_dim
    count = sum(takes_image(name, denoiser) for name in denoiser.attn_processors)
    found = sum(key.endswith("to_k_ip.weight") for key in layers)
    if width != cross or found != count:
        raise InvalidValue(field, ref, f"an IP-Adapter made for {model}'s family (text width {cross}, {count} "
                                       f"attention layers that take it; this one: {width}, {found})")


class ImageEncoders:
    """The CLIP vision models that encode reference pictures, loaded once per device and precision."""

    def __init__(self, device: DeviceChoice, size: int = 2):
        self.device = device
        self._cache: LRUCache[Any] = LRUCache(size)

    def get(self, ref: str) -> tuple[Any, Any]:
        """(model, image processor) for `ref`: `repo[:subfolder]`, or the tiny builtin."""
        return self._cache.get_or_load((ref, self.device), lambda: self._load(ref))[0]

    def _load(self, ref: str) -> tuple[Any, Any]:
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        dtype = self.device.dtype
        if ref == TINY_ENCODER:
            model = build_tiny_encoder().to(self.device.device, dtype)
        else:
            repo, _, subfolder = ref.partition(":")
            model = hub_or_cache(f"image encoder {ref}", lambda local: CLIPVisionModelWithProjection.from_pretrained(
                repo, subfolder=subfolder or None, torch_dtype=dtype, local_files_only=local)).to(self.device.device)
        size = model.config.image_size  # as diffusers makes the processor for its own encoder
        return model, CLIPImageProcessor(size=size, crop_size=size)


def load(loaded: LoadedModel, ref: str, field: str) -> Adapter:
    """The adapter `ref` for this model, loaded once (kept with the model, a few at most)."""
    adapter, _ = loaded.ip_adapters.get_or_load(ref, lambda: _load(loaded, ref, field))
    return adapter


def _load(loaded: LoadedModel, ref: str, field: str) -> Adapter:
    """diffusers loads it into the denoiser; its layers are kept and the denoiser put back as it was."""
    from diffusers.models.embeddings import ImageProjection

    denoiser = getattr(loaded.pipe, loaded.family_def.denoiser)
    state = read_adapter(ref, field)
    check_fits(state, ref, denoiser, loaded.name, field)
    # SD's loader names the image encoder `image_encoder_folder`, FLUX's `..._model_name_or_path`: none here.
    no_encoder = next(p for p in inspect.signature(loaded.pipe.load_ip_adapter).parameters if p.startswith("image_encoder"))
    with _restored(denoiser):
        try:
            loaded.pipe.load_ip_adapter(state, subfolder="", weight_name="", **{no_encoder: None})
        except (KeyError, RuntimeError, ValueError) as exc:  # layers of another shape or name
            raise InvalidValue(field, ref, f"an IP-Adapter made for {loaded.name}'s family ({exc})") from None
        containers = {name: p for name, p in denoiser.attn_processors.items() if hasattr(p, "to_k_ip")}
        projection = denoiser.encoder_hid_proj.image_projection_layers[0]
    first = next(m for m in projection.modules() if isinstance(m, torch.nn.Linear))  # what it takes in
    reads = "embeds" if isinstance(projection, ImageProjection) else "hidden"  # as diffusers decides
    encoder = ENCODERS.get((reads, first.in_features))
    if encoder is None:
        raise InvalidValue(field, ref, f"an IP-Adapter for a known image encoder (it reads {reads} of width "
                                       f"{first.in_features})")
    return Adapter(ref, {n: p.to_k_ip[0] for n, p in containers.items()},
                   {n: p.to_v_ip[0] for n, p in containers.items()}, containers, projection, reads, encoder)


@contextlib.contextmanager
def _restored(denoiser: Any) -> Iterator[None]:
    """Whatever happens inside, the denoiser leaves with the attention processors and image projection
    it came with (the same objects)."""
    processors, projection = dict(denoiser.attn_processors), getattr(denoiser, "encoder_hid_proj", None)
    kind = getattr(denoiser.config, "encoder_hid_dim_type", None)
    try:
        yield
    finally:
        denoiser.encoder_hid_proj = projection  # first: a plus adapter's projection has processors too
        denoiser.config.encoder_hid_dim_type = kind
        denoiser.set_attn_processor(processors)


@dataclass(frozen=True)
class ImagePrompts:
    """A generation's active image prompts: a slot each (its adapter and weight) and its picture's
    embeddings (positive, negative), ready for every pass."""

    slots: tuple[tuple[Adapter, float], ...]
    embeds: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @contextlib.contextmanager
    def installed(self, denoiser: Any) -> Iterator[None]:
        """The slots in the denoiser for the generation's passes; its own processors back after them."""
        from diffusers.models.embeddings import MultiIPAdapterImageProjection

        with _restored(denoiser):
            processors = dict(denoiser.attn_processors)
            first = self.slots[0][0]
            for name, container in first.containers.items():
                container.to_k_ip = torch.nn.ModuleList([a.keys[name] for a, _ in self.slots])
                container.to_v_ip = torch.nn.ModuleList([a.values[name] for a, _ in self.slots])
                container.scale = [weight for _, weight in self.slots]
                if hasattr(container, "num_tokens"):  # SD's (its older calling form reads it); FLUX's has none
                    container.num_tokens = [a.containers[name].num_tokens[0] for a, _ in self.slots]
                processors[name] = container
            denoiser.set_attn_processor(processors)
            denoiser.encoder_hid_proj = MultiIPAdapterImageProjection([a.projection for a, _ in self.slots])
            denoiser.config.encoder_hid_dim_type = "ip_image_proj"
            yield

    def arguments(self, pipe: Any, count: int, guided: bool) -> dict[str, Any]:
        """The embeddings for a pass of `count` images, per slot [batch, 1 picture, ...]: SD's pipelines
        take the negative half first when the pass guides with CFG; FLUX's take negatives apart (for
        true CFG's own pass) and repeat both per image themselves."""
        if "negative_ip_adapter_image_embeds" in call_parameters(pipe):
            return {"ip_adapter_image_embeds": [p for p, _ in self.embeds],
                    "negative_ip_adapter_image_embeds": [n for _, n in self.embeds]}
        embeds = []
        for positive, negative in self.embeds:
            batch = [positive.repeat(count, *([1] * (positive.dim() - 1)))]
            if guided:
                batch.insert(0, negative.repeat(count, *([1] * (negative.dim() - 1))))
            embeds.append(torch.cat(batch))
        return {"ip_adapter_image_embeds": embeds}

    def check_passes(self, pipes: Mapping[str, Any], model: str) -> None:
        """Refuse, before anything runs, a pass whose pipeline takes no image prompts (FLUX's ControlNet
        image to image and inpaint pipelines)."""
        for task, pipe in pipes.items():
            if "ip_adapter_image_embeds" not in call_parameters(pipe):
                raise InvalidValue("image_prompts", f"{len(self.slots)} image prompt(s)", f"none for {task} on {model} with "
                                   f"these settings ({type(pipe).__name__} takes no image prompts)")


def encode(picture: Any, adapter: Adapter, encoders: ImageEncoders, black_negative: bool) -> tuple[Any, Any]:
    """A picture's (positive, negative) embeddings as diffusers' pipelines make them: the projected
    embedding (negative: zeros, or a black picture's where the pipeline uses one: FLUX), or the
    penultimate hidden states (negative: a black picture's)."""
    model, processor = encoders.get(adapter.encoder)

    def pixels(image: Image.Image) -> torch.Tensor:
        return processor(images=image, return_tensors="pt").pixel_values.to(model.device, model.dtype)

    picture = picture.convert("RGB")
    with torch.inference_mode():
        if adapter.reads == "hidden":
            given = pixels(picture)
            positive = model(given, output_hidden_states=True).hidden_states[-2]
            negative = model(torch.zeros_like(given), output_hidden_states=True).hidden_states[-2]
        else:
            positive = model(pixels(picture)).image_embeds
            negative = (model(pixels(Image.new("RGB", picture.size))).image_embeds if black_negative
                        else torch.zeros_like(positive))
    return positive[:, None], negative[:, None]  # [1 image, 1 picture, ...]


def prepare(prompts: Sequence[ImagePrompt], loaded: LoadedModel, encoders: ImageEncoders,
            folder: Path | None = None) -> ImagePrompts | None:
    """The request's active image prompts, their adapters loaded (found by name in the controlnets
    `folder` first) and pictures encoded; None when none."""
    active = [(i, p) for i, p in enumerate(prompts) if p.active()]
    if not active:
        return None
    if not loaded.family_def.image_prompts:
        raise InvalidValue("image_prompts", loaded.name, "a model of a family with IP-Adapter support (SD 1.x, SDXL, "
                                                         "FLUX)")
    black = "negative_ip_adapter_image_embeds" in call_parameters(loaded.pipe)
    slots, embeds = [], []
    for i, prompt in active:
        if prompt.image is None:
            raise InvalidValue(f"image_prompts[{i}].image", None, "a reference picture (PNGs do not store them: add "
                                                                  "it again)")
        adapter = load(loaded, resolve(prompt.model, folder), f"image_prompts[{i}].model")
        slots.append((adapter, prompt.weight))
        embeds.append(encode(prompt.image, adapter, encoders, black))
    return ImagePrompts(tuple(slots), tuple(embeds))
