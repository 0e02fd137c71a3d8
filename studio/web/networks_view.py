"""The page's extra networks (A1111's cards, as two rows under the task tabs): a LoRA added to the prompt
as a `<lora:name:weight>` tag, and a textual-inversion embedding of the embeddings folder added to the
prompt or the negative prompt by its name (studio/embeddings: the name is what the prompt uses)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import gradio as gr

from .. import embeddings, loras, validation
from . import handlers, restore
from .calls import reported


@dataclass
class NetworksView:
    lora_name: Any
    lora_weight: Any
    add_lora: Any
    embedding: Any
    add_embedding: Any
    add_negative: Any


def embedding_names(folder: str | Path | None, allow_pickle: bool) -> list[str]:
    found, _ = embeddings.folder_files(folder, allow_pickle)
    return sorted(found)


def embedding_hint(folder: str | Path | None, allow_pickle: bool) -> str:
    """What the list holds: where its files come from, and the files it could not read."""
    if folder is None:
        return "no embeddings folder: start the studio with --embeddings-dir"
    found, refused = embeddings.folder_files(folder, allow_pickle)
    hint = (f"{len(found)} in {folder}; used by name, (name:1.2) weights it" if found
            else f"no embeddings yet: put .safetensors files in {folder} and press ↻")
    if refused:
        hint += f" · not read: {', '.join(sorted(refused)[:5])}" + (" …" if len(refused) > 5 else "")
    return hint


def with_word(prompt: str, name: str | None) -> str:
    """The prompt with the embedding's name added at its end (a comma before it), as A1111's cards do."""
    if not name:
        raise gr.Error("Pick an embedding first.", print_exception=False)
    text = validation.text("prompt", prompt)
    name = validation.text("embedding", name)
    if len(name) > loras.MAX_NAME_CHARS or "\n" in name:
        raise gr.Error(f"embedding: {name[:40]!r} is not an embedding name", print_exception=False)
    body = text.rstrip()
    return f"{body}, {name}" if body and not body.endswith(",") else f"{body} {name}".strip()


def build(config: Any) -> NetworksView:
    """Both rows, in a closed accordion (A1111's "extra networks"; on a phone the two rows are a screen tall)."""
    found = (len(handlers.lora_names(config.loras_dir)), len(embedding_names(config.embeddings_dir, config.allow_pickle)))
    with gr.Accordion(f"LoRA · Embeddings ({found[0]} + {found[1]} in the folders)", open=False,
                      elem_id="networks-panel"):
        with gr.Row():
            lora_name = gr.Dropdown(handlers.lora_names(config.loras_dir), value=None, label="LoRA", scale=3,
                                    allow_custom_value=True, elem_id="lora-name",
                                    info=handlers.lora_hint(config.loras_dir))
            lora_weight = gr.Slider(*loras.WEIGHT_RANGE, value=1.0, step=0.05, label="Weight", scale=2)
            add_lora = gr.Button("Add to prompt", scale=1, min_width=100, elem_id="add-lora")
        with gr.Row():
            embedding = gr.Dropdown(embedding_names(config.embeddings_dir, config.allow_pickle), value=None,
                                    label="Embedding (textual inversion)", scale=3, elem_id="embedding-name",
                                    info=embedding_hint(config.embeddings_dir, config.allow_pickle))
            add_embedding = gr.Button("Add to prompt", scale=1, min_width=100, elem_id="add-embedding")
            add_negative = gr.Button("Add to negative", scale=1, min_width=100, elem_id="add-negative-embedding")
    return NetworksView(lora_name, lora_weight, add_lora, embedding, add_embedding, add_negative)


def wire(view: NetworksView, config: Any, prompt: Any, negative: Any, refresh: Any, private: Mapping[str, Any]) -> None:
    """The buttons, and ↻ reading both folders again."""
    view.add_lora.click(reported(restore.lora_tag), inputs=[prompt, view.lora_name, view.lora_weight],
                        outputs=prompt, **private)
    view.add_embedding.click(reported(with_word), inputs=[prompt, view.embedding], outputs=prompt, **private)
    view.add_negative.click(reported(with_word), inputs=[negative, view.embedding], outputs=negative, **private)

    def folders() -> tuple[dict, dict]:
        return (gr.update(choices=handlers.lora_names(config.loras_dir), info=handlers.lora_hint(config.loras_dir)),
                gr.update(choices=embedding_names(config.embeddings_dir, config.allow_pickle),
                          info=embedding_hint(config.embeddings_dir, config.allow_pickle)))

    refresh.click(folders, outputs=[view.lora_name, view.embedding], **private)
