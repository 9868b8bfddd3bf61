"""Downloading a GGUF model over http(s): streamed, resumable, and never a half file that looks whole.

The bytes go to `<name>.gguf.part` in 1 MiB chunks. A cut (the network drops, the server
stalls) keeps the .part and the next download of the same link resumes it with an HTTP
Range request; a server that ignores Range (200 instead of 206) starts it over. Anything
that makes the file useless (404, a web page, not GGUF, a full disk) removes the .part.
Only when every byte the server announced has arrived is the .part renamed to `<name>.gguf`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from utils.files import fsync_dir
from utils.gguf import GGUF_MAGIC

CHUNK = 1024 * 1024
CONNECT_TIMEOUT = 10.0
PART_SUFFIX = ".part"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.gguf", re.IGNORECASE)
WEB_PAGE_TYPES = ("text/", "html", "json", "xml")

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None if unknown)


class DownloadFailed(Exception):
    """The download did not give a model file; `str(error)` is a sentence for the user."""


class DownloadInterrupted(DownloadFailed):
    """The download broke off; what arrived is kept in the .part file for a resume."""

    def __init__(self, message: str, kept: int) -> None:
        super().__init__(message)
        self.kept = kept


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    resumed_from: int  # bytes that were already there from an earlier, cut attempt
    seconds: float


def check_url(url: str) -> str:
    """The link to fetch (a Hugging Face /blob/ page link becomes its /resolve/ file link)."""
    url = url.strip()
    if not url:
        raise DownloadFailed("Paste a link to a .gguf file first.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"“{parts.scheme}:”" if parts.scheme else "no http:// or https://"
        raise DownloadFailed(f"Only http:// and https:// links can be downloaded; this one has {scheme}.")
    if not parts.hostname:
        raise DownloadFailed("That link has no server name in it; paste the whole link.")
    if parts.hostname == "huggingface.co" and "/blob/" in parts.path:
        parts = parts._replace(path=parts.path.replace("/blob/", "/resolve/", 1))
    return urlunsplit(parts)


def file_name(url: str) -> str:
    """The name the file gets in the models folder: the link's last part, if it is a plain .gguf name."""
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    if not SAFE_NAME.fullmatch(name):
        raise DownloadFailed(
            f"The link's file name “{name[:80]}” cannot be used: it must be a plain name ending in .gguf "
            "(letters, digits, . _ + -; no folders)."
        )
    return name


def partial_downloads(folder: Path) -> list[tuple[str, int]]:
    """(model file name, bytes so far) of each unfinished download in `folder`."""
    with contextlib.suppress(OSError):
        return [
            (p.name.removesuffix(PART_SUFFIX), p.stat().st_size)
            for p in sorted(folder.glob("*.gguf" + PART_SUFFIX))
            if p.is_file() and p.stat().st_size
        ]
    return []


def discard_partial(folder: Path, name: str) -> None:
    """Remove the .part of an unfinished download."""
    (folder / (file_name("/" + name) + PART_SUFFIX)).unlink(missing_ok=True)


def download(
    url: str,
    folder: Path,
    on_progress: Progress | None = None,
    *,
    timeout: float = 60.0,
    chunk_size: int = CHUNK,
) -> Downloaded:
    """Fetch the GGUF file at `url` into `folder` (resuming its .part); DownloadFailed says why not."""
    url = check_url(url)
    name = file_name(url)
    target = folder / name
    part = folder / (name + PART_SUFFIX)
    if target.exists():
        raise DownloadFailed(f"{name} is already in {folder}; it is in the list of models.")
    started = time.monotonic()
    with _open_part(folder, part) as file:
        try:
            resumed_from, size, digest = _fetch(
                url, file, on_progress or (lambda done, total: None), timeout, chunk_size
            )
        except (DownloadFailed, OSError) as error:
            kept = os.fstat(file.fileno()).st_size
            if isinstance(error, DownloadInterrupted) and kept:
                raise
            part.unlink(missing_ok=True)  # useless or empty: nothing may look like a model
            if isinstance(error, OSError):
                raise _disk_failure(error, folder) from None
            raise
        os.replace(part, target)
    fsync_dir(folder)
    return Downloaded(target, size, digest, resumed_from, time.monotonic() - started)


@contextlib.contextmanager
def _open_part(folder: Path, part: Path) -> Iterator[io.FileIO]:
    """The .part opened for appending and locked, so a second tab cannot write into it too."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        file = io.FileIO(part, "a+")  # unbuffered: the size on disk is what has arrived
    except OSError as error:
        raise _disk_failure(error, folder) from None
    with file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadFailed(
                f"{part.name.removesuffix(PART_SUFFIX)} is already downloading (in another tab?)."
            ) from None
        try:
            yield file
        finally:
            with contextlib.suppress(OSError):  # an empty .part (nothing arrived) is not worth keeping
                ours = os.fstat(file.fileno())
                if ours.st_size == 0 and os.stat(part).st_ino == ours.st_ino:
                    part.unlink()


def _fetch(url: str, file: io.FileIO, on_progress: Progress, timeout: float, chunk: int) -> tuple[int, int, str]:
    """Stream the body into `file` after what it holds; (bytes resumed from, size, SHA-256)."""
    host = urlsplit(url).hostname
    limits = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
    with httpx.Client(follow_redirects=True, timeout=limits, event_hooks={"request": [_http_only]}) as client:
        for _ in range(2):  # a second try from byte 0 when the server cannot resume
            offset = os.fstat(file.fileno()).st_size
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            try:
                with client.stream("GET", url, headers=headers) as response:
                    start, total = _accept(response, offset)
                    if start is None:
                        file.truncate(0)
                        continue
                    if start == 0 and offset:
                        file.truncate(0)  # the server ignored Range: the whole file comes again
                    if start == total:  # an earlier attempt got every byte but was stopped before the rename
                        return start, start, _finish(file, None)
                    _check_space(file, total, start)
                    digest = hashlib.sha256() if start == 0 else None
                    head, done = b"", start
                    on_progress(done, total)
                    for data in response.iter_raw(chunk):
                        if digest is not None:
                            if len(head) < len(GGUF_MAGIC):
                                head += data[: len(GGUF_MAGIC) - len(head)]
                                _check_magic(head)
                            digest.update(data)
                        _write_all(file, data)
                        done += len(data)
                        on_progress(done, total)
                    if total is not None and done != total:
                        raise DownloadInterrupted(_broke_off(done), done)
                    return start, done, _finish(file, digest)
            except httpx.TooManyRedirects:
                raise DownloadFailed("The link redirects too many times; check it.") from None
            except httpx.InvalidURL:
                raise DownloadFailed("That link is not a valid web address; check it.") from None
            except (httpx.TransportError, httpx.StreamError) as error:
                kept = os.fstat(file.fileno()).st_size
                if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
                    raise DownloadInterrupted(
                        f"Could not reach {host}: check the link and your network connection"
                        + (", then press Download again to resume." if kept else "."),
                        kept,
                    ) from None
                raise DownloadInterrupted(_broke_off(kept), kept) from None
    raise DownloadFailed("The server could not resume the download, nor send it from the start; try again later.")


def _accept(response: httpx.Response, offset: int) -> tuple[int | None, int | None]:
    """Where the body starts in the file and the file's full size (None: unknown); (None, _) to
    start over. Raises DownloadFailed for answers that are not the file."""
    status = response.status_code
    if status == 416:  # asked for bytes past the end: complete already, or the file changed
        total = _content_range(response.headers.get("content-range", ""))[1]
        return (offset, total) if total == offset else (None, None)
    if status in (404, 410):
        raise DownloadFailed(
            f"There is no file at that link ({status}). Check it; on Hugging Face, copy the link of the "
            ".gguf file itself (…/resolve/main/….gguf)."
        )
    if status in (401, 403):
        raise DownloadFailed(
            f"The server refused the download ({status}). Some Hugging Face models need a login and an "
            "accepted licence; the recommended models do not."
        )
    if status == 429:
        raise DownloadFailed("The server is limiting downloads right now (429); try again in a few minutes.")
    if status >= 500:
        raise DownloadInterrupted(f"The server failed ({status}); try again later.", offset)
    if status not in (200, 206):
        raise DownloadFailed(f"The server answered {status} instead of the file.")
    kind = response.headers.get("content-type", "").lower()
    if any(marker in kind for marker in WEB_PAGE_TYPES):
        raise DownloadFailed(
            "That link leads to a web page, not a model file. On Hugging Face, use the file's download link "
            "(…/resolve/main/….gguf), not its page."
        )
    if status == 206:
        start, total = _content_range(response.headers.get("content-range", ""))
        return (start, total) if start == offset else (None, None)
    length = response.headers.get("content-length", "")
    return 0, int(length) if length.isdigit() else None


def _content_range(header: str) -> tuple[int | None, int | None]:
    """(first byte, full size) from "bytes 100-199/1000" or "bytes */1000"."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", header.strip())
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total and total != "*" else None)


def _check_magic(head: bytes) -> None:
    """The file must start with b"GGUF": checked as soon as its first bytes arrive."""
    if not GGUF_MAGIC.startswith(head):
        if head.lstrip()[:1] == b"<":
            raise DownloadFailed("That link leads to a web page, not a model file; use the .gguf file's own link.")
        raise DownloadFailed("That link does not give a GGUF model file (it does not start with “GGUF”).")


def _write_all(file: io.FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[file.write(view) or 0 :]


def _read_head(file: io.FileIO) -> bytes:
    return os.pread(file.fileno(), len(GGUF_MAGIC), 0)


def _broke_off(kept: int) -> str:
    return f"The download broke off after {_mb(kept)} MB. Press Download again to resume it."


def _check_space(file: io.FileIO, total: int | None, start: int) -> None:
    if total is None:
        return
    free = shutil.disk_usage(Path(file.name).parent).free
    if total - start > free:
        raise DownloadFailed(
            f"Not enough disk space: the model needs {_gb(total - start)} GB more and "
            f"{_gb(free)} GB are free. Free some space, or set MODELS_DIR to a bigger disk."
        )


def _finish(file: io.FileIO, digest: hashlib._Hash | None) -> str:
    """Flush the whole file to disk, check it starts as a GGUF file; its SHA-256."""
    file.flush()
    os.fsync(file.fileno())
    if _read_head(file) != GGUF_MAGIC:
        raise DownloadFailed("That link does not give a GGUF model file (it does not start with “GGUF”).")
    if digest is None:  # resumed: hash what earlier attempts wrote too
        digest = hashlib.sha256()
        file.seek(0)
        while data := file.read(CHUNK):
            digest.update(data)
    return digest.hexdigest()


def _http_only(request: httpx.Request) -> None:
    """Every request, redirects included, goes to http(s) only."""
    if request.url.scheme not in ("http", "https"):
        raise DownloadFailed(f"The link redirects to a {request.url.scheme}: address; only http(s) is followed.")


def _disk_failure(error: OSError, folder: Path) -> DownloadFailed:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return DownloadFailed(
            f"The disk is full ({error.strerror}); the unfinished download was removed. Free some space "
            f"in {folder}, or set MODELS_DIR to a bigger disk, then download again."
        )
    return DownloadFailed(f"Could not write to {folder} ({error.strerror or error}). Check MODELS_DIR.")


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f}"


def _gb(size: int) -> str:
    return f"{size / 1e9:,.2f}"
