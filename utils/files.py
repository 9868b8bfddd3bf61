"""Small file helpers shared by everything that writes files atomically (store, preferences, downloads)."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable. Best effort: some systems cannot open or sync a directory."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
