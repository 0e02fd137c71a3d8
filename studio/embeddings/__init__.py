"""Textual-inversion embeddings (A1111's `embeddings` folder): files (`files.py`), what a loaded model
has of them and how prompts name them (`vocabulary.py`), their vectors in the text encoder (`inject.py`)."""

from .files import Embedding
from .used import TI_HASHES_KEY, png_notes, refused_notices, ti_hashes
from .vocabulary import Vocabulary, attach, cache_key, folder_files, listing, of

__all__ = ["Embedding", "TI_HASHES_KEY", "Vocabulary", "attach", "cache_key", "folder_files", "listing", "of",
           "png_notes", "refused_notices", "ti_hashes"]
