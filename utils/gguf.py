"""GGUF model files: telling one from anything else, finding them, and the recommended list.

Only the first four bytes are read: a GGUF file starts with the magic b"GGUF". Whether
llama.cpp can really run it is known only when it loads.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

GGUF_MAGIC = b"GGUF"
RECOMMENDED_FILE = Path(__file__).resolve().parent.parent / "model" / "recommended_models.toml"


class ModelFileError(Exception):
    """A path is not a usable GGUF model file; `str(error)` says why, for the user."""


def check_gguf(path: str | Path) -> Path:
    """The absolute path of a readable file that starts with the GGUF magic; else ModelFileError."""
    shown = str(path).strip()
    if not shown:
        raise ModelFileError("Type the path of a .gguf file first.")
    try:
        resolved = Path(shown).expanduser().resolve()
        exists, is_file = resolved.exists(), resolved.is_file()
    except (OSError, RuntimeError, ValueError) as error:
        raise ModelFileError(f"{shown} cannot be used as a path ({error}).") from None
    if not exists:
        raise ModelFileError(f"There is no file at {shown} (paths are read on the machine that runs bnaGPT).")
    if not is_file:
        raise ModelFileError(f"{shown} is a folder or a device, not a file: give the path of a .gguf file.")
    try:
        with resolved.open("rb") as file:
            head = file.read(len(GGUF_MAGIC))
    except PermissionError:
        raise ModelFileError(f"bnaGPT may not read {shown} (permission denied): make the file readable.") from None
    except OSError as error:
        raise ModelFileError(f"{shown} could not be read ({error.strerror or error}).") from None
    if head != GGUF_MAGIC:
        raise ModelFileError(
            f"{shown} is not a GGUF model file (it does not start with “GGUF”). The embedded model needs a "
            ".gguf file, such as one from the recommended list."
        )
    return resolved


def is_gguf(path: Path) -> bool:
    try:
        check_gguf(path)
    except ModelFileError:
        return False
    return True


def gguf_files(folder: Path) -> list[Path]:
    """The GGUF files directly in `folder`, by name; unfinished downloads (.part) are not."""
    try:
        candidates = sorted(folder.glob("*.gguf"), key=lambda p: p.name.casefold())
    except OSError:
        return []
    return [p.resolve() for p in candidates if is_gguf(p)]


@dataclass(frozen=True)
class Recommended:
    """A small instruct model worth downloading, as listed in model/recommended_models.toml."""

    name: str
    url: str
    size_mb: int
    licence: str
    licence_url: str
    params: str
    note: str = ""

    @property
    def file(self) -> str:
        """The file name the download gets (the link's last part)."""
        return unquote(PurePosixPath(urlsplit(self.url).path).name)


def load_recommended(path: Path = RECOMMENDED_FILE) -> list[Recommended]:
    """The recommended models, smallest first. A broken data file is a bug: it raises."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    models = [Recommended(**entry) for entry in data["model"]]
    return sorted(models, key=lambda m: m.size_mb)
