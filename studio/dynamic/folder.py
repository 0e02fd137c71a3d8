"""The wildcards folder: `name.txt` files (sub-folders too: `__sub/name__`), one choice a line, as A1111's
sd-dynamic-prompts reads them. Listed and read here, never by the library, so every limit and the folder's
bounds hold: a name never leaves the folder, and a file is measured before it is read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidValue
from ..validation import MAX_PROMPT_CHARS

MAX_FILES = 2_000  # a wildcards folder is listed, never crawled without end
MAX_FILE_BYTES = 1 << 20  # a wildcard file holds lines of prompt text: a megabyte is thousands of them
MAX_LINES = 10_000
MAX_NAME_CHARS = 255
SUFFIX = ".txt"


def check_name(name: str) -> str:
    """A wildcard's name as the prompt wrote it, refused when it would leave the folder: `..`, a path from
    the root (`/etc/passwd`, `C:/...`, `\\\\server`). Globs (`*`, `animals/*`) stay: they match inside."""
    parts = name.replace("\\", "/").split("/")
    if len(name) > MAX_NAME_CHARS or name.startswith(("/", "\\")) or ".." in parts or ":" in name:
        raise InvalidValue("prompt", f"__{name}__", "wildcard names inside the wildcards folder (no '..', no "
                                                    "absolute path)")
    return name


@dataclass(frozen=True)
class WildcardFolder:
    """A folder of wildcard files. `follow_links`: a link leading out of the folder is followed only on
    a local studio (no path rule); a shared one skips it, as it opens no file outside its folders."""

    root: Path
    follow_links: bool = False
    _listing: dict[str, Path] = field(default_factory=dict, init=False, repr=False, compare=False)
    # What was read, kept for this object's life (a plan's): a file named by every image is read once.
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def files(self) -> dict[str, Path]:
        """name -> file, listed once per folder object (a plan makes one), refused past MAX_FILES."""
        if not self._listing:
            self._listing.update(self._walk())
        return self._listing

    def names(self) -> list[str]:
        return sorted(self.files())

    def _walk(self) -> dict[str, Path]:
        root = self.root.resolve()
        found: dict[str, Path] = {}
        seen = 0
        for dirname, dirnames, filenames in os.walk(root, followlinks=self.follow_links):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and self._inside(Path(dirname, d), root))
            for filename in sorted(filenames):
                seen += 1
                if seen > MAX_FILES:
                    raise InvalidValue("wildcards", f"more than {MAX_FILES} files in {self.root}",
                                       f"at most {MAX_FILES} files in the wildcards folder (--wildcards-dir)")
                path = Path(dirname, filename)
                if filename.endswith(SUFFIX) and not filename.startswith(".") and self._inside(path, root):
                    found[path.relative_to(root).with_suffix("").as_posix()] = path
        return found

    def _inside(self, path: Path, root: Path) -> bool:
        """A link is kept where it stays in the folder (or the studio is local): the path rule's promise."""
        return self.follow_links or not path.is_symlink() or path.resolve().is_relative_to(root)

    def lines(self, name: str) -> list[str]:
        """A file's choices: its non-empty lines, `#` comment lines left out (the library's rule), measured
        before reading (bytes) and after (lines; a line longer than a prompt may be is no choice)."""
        if ("lines", name) not in self.cache:
            self.cache["lines", name] = self._read(name)
        return self.cache["lines", name]

    def _read(self, name: str) -> list[str]:
        path = self.files()[name]
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidValue("prompt", f"__{name}__", f"wildcard files of at most {MAX_FILE_BYTES} bytes "
                                                        f"({name}{SUFFIX} has {size})")
        with path.open("rb") as handle:
            text = handle.read(MAX_FILE_BYTES + 1).decode("utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if len(lines) > MAX_LINES:
            raise InvalidValue("prompt", f"__{name}__", f"wildcard files of at most {MAX_LINES} lines "
                                                        f"({name}{SUFFIX} has {len(lines)})")
        longest = max(lines, key=len, default="")
        if len(longest) > MAX_PROMPT_CHARS:
            raise InvalidValue("prompt", f"__{name}__", f"wildcard lines of at most {MAX_PROMPT_CHARS} characters "
                                                        f"({name}{SUFFIX} has one of {len(longest)})")
        return lines


def folder_for(root: Path | None, follow_links: bool = False) -> WildcardFolder | None:
    """The folder to read, or None where the studio has none (its flag's folder missing): `__x__` then
    stays text, as the library leaves a wildcard it cannot find."""
    if root is None or not Path(root).is_dir():
        return None
    return WildcardFolder(Path(root), follow_links)
