"""IP-Adapters on a loaded model's own UNet: loaded once each (diffusers' `load_ip_adapter`), put in
for a generation and taken out after it, so that a generation without image prompts runs the UNet's
own attention processors, the very objects it had: the image without an IP-Adapter, bit for bit.

Each image prompt is a slot: its adapter's key/value layers (shared, never copied when two prompts
use the same adapter) and its own weight, so every reference picture is weighted on its own, as two
IP-Adapter units are in A1111. A prompt of weight 0 takes no slot and costs nothing.

The pictures are encoded here, once per generation, by the CLIP vision model the adapter was made for
(read from the adapter's own projection layer), and handed to every pass as `ip_adapter_image_embeds`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from ..cache import LRUCache
from ..devices import DeviceChoice
from ..errors import InvalidValue, ModelLoadError
from ..hub import hub_or_cache
from ..loading import LoadedModel
from ..tiny import TINY_SEED
from .image_prompts import A1111_MODULES, ImagePrompt

REPO = "h94/IP-Adapter"  # the IP-Adapters A1111 users know, by name (A1111_MODULES)
BUILTIN = "builtin:ip-adapter/"  # + a family: the tiny models' random-weight adapter
TINY_ENCODER = "builtin:image-encoder"
TINY_EMBEDS = 24  # the tiny image encoder's embedding width
# The image encoder an adapter reads, by what its projection takes: the pictures' embeddings or the
# encoder's hidden states ("plus" adapters), and their width.
ENCODERS = {("embeds", 1024): f"{REPO}:models/image_encoder", ("hidden", 1280): f"{REPO}:models/image_encoder",
            ("embeds", 1280): f"{REPO}:sdxl_models/image_encoder", ("hidden", 1664): f"{REPO}:sdxl_models/image_encoder",
            ("embeds", TINY_EMBEDS): TINY_ENCODER}


@dataclass
class Adapter:
    ref: str
    keys: dict[str, Any]  # attention processor name -> this adapter's to_k_ip / to_v_ip layers
    values: dict[str, Any]
    containers: dict[str, Any]  # processor name -> an IP-Adapter processor to fill with slots
    projection: Any  # the picture embedding -> image tokens layer
    reads: str  # "embeds" or "hidden"
    encoder: str


def build_tiny_adapter(family: str) -> dict[str, dict[str, torch.Tensor]]:
    """A random-weight IP-Adapter in the files' own layout for a family's tiny UNet (deterministic)."""
    from ..families import family as family_of

    if family not in ("sd15", "sdxl"):
        raise InvalidValue("image prompt model", BUILTIN + family, f"{BUILTIN}sd15 or {BUILTIN}sdxl")
    return random_adapter(family_of(family).tiny().unet)


def random_adapter(unet: Any) -> dict[str, dict[str, torch.Tensor]]:
    """A random-weight IP-Adapter for any UNet, reading the tiny image encoder's embeddings (the
    benchmark's mid-size model has one too)."""
    cross = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(TINY_SEED + 2)

    def weights(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.3

    image_proj = {"proj.weight": weights(4 * cross, TINY_EMBEDS), "proj.bias": weights(4 * cross),
                  "norm.weight": torch.ones(cross), "norm.bias": torch.zeros(cross)}
    ip_adapter, key_id = {}, 1  # diffusers reads the cross-attention layers as 1, 3, 5, ...
    for name in unet.attn_processors:
        if name.endswith("attn2.processor"):
            hidden = unet.get_submodule(name[: -len(".processor")]).to_k.out_features
            ip_adapter[f"{key_id}.to_k_ip.weight"] = weights(hidden, cross)
            ip_adapter[f"{key_id}.to_v_ip.weight"] = weights(hidden, cross)
            key_id += 2
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def save_adapter(state: dict[str, dict[str, torch.Tensor]], path: Any) -> None:
    """As the published .safetensors files hold them: `image_proj.*` and `ip_adapter.*` keys."""
    from safetensors.torch import save_file

    save_file({f"{part}.{key}": tensor.contiguous() for part, tensors in state.items()
               for key, tensor in tensors.items()}, str(path))


def build_tiny_encoder() -> tuple[Any, Any]:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 3)
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=40, intermediate_size=64, projection_dim=TINY_EMBEDS, num_hidden_layers=2,
            num_attention_heads=4, image_size=32, patch_size=8))
    return model.eval()


def read_adapter(ref: str, field: str) -> dict[str, dict[str, torch.Tensor]]:
    """An adapter's weights as {"image_proj": ..., "ip_adapter": ...}: a known name (from the Hub's
    h94/IP-Adapter), a .safetensors / .bin file, or a builtin."""
    if ref.startswith(BUILTIN):
        return build_tiny_adapter(ref[len(BUILTIN):])
    path = Path(ref).expanduser()
    if ref in A1111_MODULES:
        from huggingface_hub import hf_hub_download

        folder = "sdxl_models" if "sdxl" in ref else "models"
        path = Path(hub_or_cache(f"IP-Adapter {ref}", lambda local: hf_hub_download(
            REPO, f"{folder}/{ref}.safetensors", local_files_only=local)))
    elif not (path.is_file() and path.suffix in (".safetensors", ".bin")):
        raise InvalidValue(field, ref, "an IP-Adapter: " + ", ".join(sorted(A1111_MODULES)) + ", a .safetensors "
                                       "or .bin file, or builtin:ip-adapter/sd15 or sdxl")
    try:
        if path.suffix == ".bin":
            return torch.load(path, map_location="cpu", weights_only=True)
        from safetensors.torch import load_file

        parts: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
        for key, tensor in load_file(path).items():
            part, _, rest = key.partition(".")
            if part in parts:
                parts[part][rest] = tensor
        return parts
    except Exception as exc:  # a damaged or foreign file
        raise ModelLoadError(f"IP-Adapter {ref} could not be read: {exc}") from exc


def check_fits(state: dict, ref: str, unet: Any, model: str, field: str) -> None:
    """Refuse an adapter made for another family (SD 1.5's on SDXL) before it touches the UNet."""
    proj, layers = state.get("image_proj") or {}, state.get("ip_adapter") or {}
    if not proj or not layers:
        raise InvalidValue(field, ref, "an IP-Adapter file (image_proj and ip_adapter weights)")
    if any("lora" in key for key in layers) or "proj.0.weight" in proj:
        raise InvalidValue(field, ref, "an IP-Adapter that reads CLIP pictures (FaceID ones need insightface)")
    width = proj["proj.weight"].shape[0] // 4 if "proj.weight" in proj else (
        proj["proj_out.weight"].shape[0] if "proj_out.weight" in proj else None)
    cross = unet.config.cross_attention_dim
    count = sum(name.endswith("attn2.processor") for name in unet.attn_processors)
    found = sum(key.endswith("to_k_ip.weight") for key in layers)
    if width != cross or found != count:
        raise InvalidValue(field, ref, f"an IP-Adapter made for {model}'s family (text width {cross}, {count} "
                                       f"cross-attention layers; this one: {width}, {found})")


class ImageEncoders:
    """The CLIP vision models that encode reference pictures, loaded once per device and precision."""

    def __init__(self, device: DeviceChoice, size: int = 2):
        self.device = device
        self._cache: LRUCache[Any] = LRUCache(size)

    def get(self, ref: str) -> tuple[Any, Any]:
        """(model, image processor) for `ref`: `repo:subfolder`, a folder, or the tiny builtin."""
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
    cache = loaded.ip_adapters
    adapter, _ = cache.get_or_load(ref, lambda: _load(loaded, ref, field))
    return adapter


def _load(loaded: LoadedModel, ref: str, field: str) -> Adapter:
    """diffusers loads it into the UNet; its layers are kept and the UNet put back as it was."""
    unet = loaded.pipe.unet
    state = read_adapter(ref, field)
    check_fits(state, ref, unet, loaded.name, field)
    with _restored(unet):
        loaded.pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None)
        containers = {name: p for name, p in unet.attn_processors.items() if hasattr(p, "to_k_ip")}
        projection = unet.encoder_hid_proj.image_projection_layers[0]
    first = next(m for m in projection.modules() if isinstance(m, torch.nn.Linear))  # what it takes in
    from diffusers.models.embeddings import ImageProjection

    reads = "embeds" if isinstance(projection, ImageProjection) else "hidden"  # as diffusers decides
    encoder = ENCODERS.get((reads, first.in_features))
    if encoder is None:
        raise InvalidValue(field, ref, f"an IP-Adapter for a known image encoder (it reads {reads} of width "
                                       f"{first.in_features})")
    return Adapter(ref, {n: p.to_k_ip[0] for n, p in containers.items()},
                   {n: p.to_v_ip[0] for n, p in containers.items()}, containers, projection, reads, encoder)


@contextlib.contextmanager
def _restored(unet: Any) -> Iterator[None]:
    """Whatever happens inside, the UNet leaves with the attention processors and image projection it
    came with (the same objects)."""
    processors, projection = dict(unet.attn_processors), unet.encoder_hid_proj
    kind = unet.config.encoder_hid_dim_type
    try:
        yield
    finally:
        unet.encoder_hid_proj = projection  # first: a plus adapter's projection has processors too
        unet.config.encoder_hid_dim_type = kind
        unet.set_attn_processor(processors)


@dataclass(frozen=True)
class ImagePrompts:
    """A generation's active image prompts: a slot each (its adapter and weight) and its picture's
    embeddings (positive, negative), ready for every pass."""

    slots: tuple[tuple[Adapter, float], ...]
    embeds: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @contextlib.contextmanager
    def installed(self, unet: Any) -> Iterator[None]:
        """The slots in the UNet for the generation's passes; its own processors back after them."""
        from diffusers.models.embeddings import MultiIPAdapterImageProjection

        with _restored(unet):
            processors = dict(unet.attn_processors)
            first = self.slots[0][0]
            for name, container in first.containers.items():
                container.to_k_ip = torch.nn.ModuleList([a.keys[name] for a, _ in self.slots])
                container.to_v_ip = torch.nn.ModuleList([a.values[name] for a, _ in self.slots])
                container.scale = [weight for _, weight in self.slots]
                container.num_tokens = [a.containers[name].num_tokens[0] for a, _ in self.slots]
                processors[name] = container
            unet.set_attn_processor(processors)
            unet.encoder_hid_proj = MultiIPAdapterImageProjection([a.projection for a, _ in self.slots])
            unet.config.encoder_hid_dim_type = "ip_image_proj"
            yield

    def arguments(self, count: int, guided: bool) -> dict[str, Any]:
        """`ip_adapter_image_embeds` for a pass of `count` images: per slot [batch, 1 picture, ...],
        the negative half first when the pass guides with CFG (as the pipeline's `encode_image` gives)."""
        embeds = []
        for positive, negative in self.embeds:
            batch = [positive.repeat(count, *([1] * (positive.dim() - 1)))]
            if guided:
                batch.insert(0, negative.repeat(count, *([1] * (negative.dim() - 1))))
            embeds.append(torch.cat(batch))
        return {"ip_adapter_image_embeds": embeds}


def encode(picture: Any, adapter: Adapter, encoders: ImageEncoders) -> tuple[torch.Tensor, torch.Tensor]:
    """A picture's (positive, negative) embeddings as diffusers' `encode_image` makes them: the
    projected embedding (negative: zeros), or the penultimate hidden states (negative: a black picture's)."""
    model, processor = encoders.get(adapter.encoder)
    pixels = processor(images=picture.convert("RGB"), return_tensors="pt").pixel_values
    pixels = pixels.to(model.device, model.dtype)
    with torch.inference_mode():
        if adapter.reads == "hidden":
            positive = model(pixels, output_hidden_states=True).hidden_states[-2]
            negative = model(torch.zeros_like(pixels), output_hidden_states=True).hidden_states[-2]
        else:
            positive = model(pixels).image_embeds
            negative = torch.zeros_like(positive)
    return positive[:, None], negative[:, None]  # [1 image, 1 picture, ...]


def prepare(prompts: Sequence[ImagePrompt], loaded: LoadedModel, encoders: ImageEncoders) -> ImagePrompts | None:
    """The request's active image prompts, their adapters loaded and pictures encoded; None when none."""
    active = [(i, p) for i, p in enumerate(prompts) if p.active()]
    if not active:
        return None
    if not loaded.family_def.image_prompts:
        raise InvalidValue("image_prompts", loaded.name, "a model of a family with IP-Adapter support (SD 1.x, SDXL)")
    slots, embeds = [], []
    for i, prompt in active:
        if prompt.image is None:
            raise InvalidValue(f"image_prompts[{i}].image", None, "a reference picture (PNGs do not store them: add "
                                                                  "it again)")
        adapter = load(loaded, prompt.model, f"image_prompts[{i}].model")
        slots.append((adapter, prompt.weight))
        embeds.append(encode(prompt.image, adapter, encoders))
    return ImagePrompts(tuple(slots), tuple(embeds))
