"""Downloading GGUF models from a real HTTP server on loopback that behaves like Hugging Face's CDN
(redirects, Range requests) or misbehaves on purpose (cuts, stalls, ignores Range, sends a web page)."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
import struct
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser import free_port
from utils import downloads
from utils.downloads import DownloadFailed, DownloadInterrupted, check_url, download
from utils.gguf import check_gguf
from utils.local_server import find_bundled_model

MiB = 1024 * 1024


def crafted_gguf(size: int = 3 * MiB + 12_345, seed: int = 7) -> bytes:
    """A file that starts like a GGUF model (magic, version 3, no tensors) followed by noise."""
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    return header + random.Random(seed).randbytes(size - len(header))


@dataclass
class Behaviour:
    cuts: list[int] = field(default_factory=list)  # per response, close the connection after this many bytes
    stall_after: int | None = None  # stop sending (but keep the connection) after this many bytes
    ignore_range: bool = False
    content_type: str = "application/octet-stream"
    announce: int | None = None  # a Content-Length other than the real one


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that stops reading is expected here
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FileServer:
    """`with FileServer({"/m.gguf": data_or_path}) as server:` → `server.url("/m.gguf")`."""

    def __init__(self, files: dict[str, bytes | Path], redirects: dict[str, str] | None = None) -> None:
        self.files = files
        self.redirects = redirects or {}
        self.behaviour = Behaviour()
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self._stop = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    @property
    def ranges(self) -> list[str | None]:
        return [r for _, r in self.requests]

    def __enter__(self) -> FileServer:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, self.headers.get("Range")))
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                source = server.files.get(self.path)
                if source is None:
                    self._send(404, b"Entry not found", "text/plain; charset=utf-8")
                    return
                data = source.read_bytes() if isinstance(source, Path) else source
                if isinstance(source, bytes) and source.lstrip().startswith(b"<"):
                    self._send(200, data, server.behaviour.content_type)
                    return
                self._file(data)

            def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _file(self, data: bytes) -> None:
                behaviour, size, start = server.behaviour, len(data), 0
                asked = self.headers.get("Range", "")
                if asked and not behaviour.ignore_range:
                    start = int(asked.removeprefix("bytes=").rstrip("-"))
                    if start >= size:
                        self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                        return
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", behaviour.content_type)
                self.send_header("Content-Length", str(behaviour.announce or size - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()
                cut = behaviour.cuts.pop(0) if behaviour.cuts else None
                sent = 0
                for at in range(start, size, 64 * 1024):
                    piece = data[at : at + 64 * 1024]
                    if cut is not None and sent + len(piece) >= cut:
                        self.wfile.write(piece[: cut - sent])
                        self.wfile.flush()
                        time.sleep(0.1)  # what was sent arrives; then the connection drops
                        self.connection.shutdown(2)
                        self.close_connection = True
                        return
                    if behaviour.stall_after is not None and sent >= behaviour.stall_after:
                        self.wfile.flush()
                        server._stop.wait(30)
                        self.close_connection = True
                        return
                    self.wfile.write(piece)
                    sent += len(piece)

        return Handler


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def model_bytes() -> bytes:
    return crafted_gguf()


@pytest.fixture
def server(model_bytes: bytes) -> Iterator[FileServer]:
    with FileServer(
        {"/org/repo/resolve/main/small.gguf": model_bytes, "/page.gguf": b"<!DOCTYPE html><html>Model card</html>"},
        redirects={"/redirect/small.gguf": "/org/repo/resolve/main/small.gguf", "/evil/x.gguf": "file:///etc/passwd"},
    ) as running:
        yield running


def test_download_streams_the_file_and_reports_progress_size_and_sha256(
    server: FileServer, model_bytes: bytes, tmp_path: Path
) -> None:
    seen: list[tuple[int, int | None]] = []
    done = download(
        server.url("/org/repo/resolve/main/small.gguf"), tmp_path / "models", lambda d, t: seen.append((d, t))
    )
    assert done.path == tmp_path / "models" / "small.gguf"
    assert done.path.read_bytes() == model_bytes
    assert (done.size, done.sha256, done.resumed_from) == (len(model_bytes), sha256(model_bytes), 0)
    assert seen[0] == (0, len(model_bytes)) and seen[-1] == (len(model_bytes), len(model_bytes))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 4  # 1 MiB chunks
    assert files_in(tmp_path / "models") == ["small.gguf"]
    assert check_gguf(done.path) == done.path


def test_a_cut_keeps_the_part_and_the_next_download_resumes_with_range(
    server: FileServer, model_bytes: bytes, tmp_path: Path
) -> None:
    folder, url = tmp_path / "models", server.url("/org/repo/resolve/main/small.gguf")
    server.behaviour.cuts = [MiB + 500]
    with pytest.raises(DownloadInterrupted, match="broke off.*Press Download again to resume") as cut:
        download(url, folder)
    part = folder / "small.gguf.part"
    assert files_in(folder) == ["small.gguf.part"]  # nothing looks like a model
    kept = part.stat().st_size
    assert 0 < kept < len(model_bytes) and cut.value.kept == kept
    assert part.read_bytes() == model_bytes[:kept]

    done = download(url, folder)
    assert server.ranges == [None, f"bytes={kept}-"]
    assert done.resumed_from == kept
    assert done.sha256 == sha256(model_bytes) and done.path.read_bytes() == model_bytes
    assert files_in(folder) == ["small.gguf"]


def test_a_server_that_ignores_range_starts_the_file_over(
    server: FileServer, model_bytes: bytes, tmp_path: Path
) -> None:
    folder, url = tmp_path / "models", server.url("/org/repo/resolve/main/small.gguf")
    server.behaviour.cuts = [2 * MiB]
    with pytest.raises(DownloadInterrupted):
        download(url, folder)
    server.behaviour.ignore_range = True
    done = download(url, folder)
    assert server.ranges[1] is not None  # it was asked to resume, and sent 200 with everything
    assert done.resumed_from == 0
    assert done.path.read_bytes() == model_bytes and done.sha256 == sha256(model_bytes)


def test_a_part_that_already_holds_every_byte_is_finished(
    server: FileServer, model_bytes: bytes, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "small.gguf.part").write_bytes(model_bytes)  # stopped between the last byte and the rename
    done = download(server.url("/org/repo/resolve/main/small.gguf"), folder)
    assert server.ranges == [f"bytes={len(model_bytes)}-"]  # answered 416 */size
    assert done.sha256 == sha256(model_bytes) and files_in(folder) == ["small.gguf"]


def test_redirects_are_followed_to_http_only(server: FileServer, model_bytes: bytes, tmp_path: Path) -> None:
    done = download(server.url("/redirect/small.gguf"), tmp_path)
    assert done.path.read_bytes() == model_bytes
    with pytest.raises(DownloadFailed, match="only http"):
        download(server.url("/evil/x.gguf"), tmp_path)
    assert files_in(tmp_path) == ["small.gguf"]


def test_a_stall_times_out_and_keeps_what_arrived(server: FileServer, model_bytes: bytes, tmp_path: Path) -> None:
    server.behaviour.stall_after = MiB
    started = time.monotonic()
    with pytest.raises(DownloadInterrupted, match="broke off"):
        download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path, timeout=0.5)
    assert time.monotonic() - started < 5
    assert files_in(tmp_path) == ["small.gguf.part"]
    server.behaviour.stall_after = None
    assert download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path).sha256 == sha256(model_bytes)


def test_404_says_so_and_leaves_nothing(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed, match=r"no file at that link \(404\)"):
        download(server.url("/org/repo/resolve/main/missing.gguf"), tmp_path)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_a_web_page_is_not_a_model(server: FileServer, tmp_path: Path, content_type: str) -> None:
    """Told by its Content-Type, or else by its first bytes."""
    server.behaviour.content_type = content_type
    with pytest.raises(DownloadFailed, match="web page, not a model file"):
        download(server.url("/page.gguf"), tmp_path)
    assert files_in(tmp_path) == []


def test_a_file_that_is_not_gguf_is_refused_at_its_first_bytes(tmp_path: Path) -> None:
    zipped = b"PK\x03\x04" + bytes(3 * MiB)
    with FileServer({"/m.gguf": zipped}) as server:
        with pytest.raises(DownloadFailed, match="does not start with “GGUF”"):
            download(server.url("/m.gguf"), tmp_path)
        assert len(server.requests) == 1
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd.gguf",
        "ftp://example.com/m.gguf",
        "javascript:alert(1)",
        "",
        "   ",
        "huggingface.co/a/b/m.gguf",
    ],
)
def test_only_http_links(url: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed) as failed:
        download(url, tmp_path / "models")
    assert str(failed.value).endswith(".") and "\n" not in str(failed.value)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    "path",
    [
        "/..%2F..%2Fevil.gguf",
        "/%2Fetc%2Fevil.gguf",
        "/..%5Cevil.gguf",
        "/.hidden.gguf",
        "/model.bin",
        "/a%00b.gguf",
        "/",
    ],
)
def test_file_names_with_path_tricks_are_refused_before_asking(server: FileServer, tmp_path: Path, path: str) -> None:
    folder = tmp_path / "a" / "models"
    with pytest.raises(DownloadFailed, match="cannot be used"):
        download(server.url(path), folder)
    assert not (tmp_path / "a").exists() and files_in(tmp_path) == []
    assert server.requests == []


def test_nothing_listening_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadFailed, match="Could not reach 127.0.0.1"):
        download(f"http://127.0.0.1:{free_port()}/m.gguf", tmp_path)
    assert time.monotonic() - started < 2
    assert files_in(tmp_path) == []


def test_a_full_disk_removes_the_part(server: FileServer, tmp_path: Path) -> None:
    """The real thing: the .part is /dev/full, where every write fails with ENOSPC."""
    (tmp_path / "small.gguf.part").symlink_to("/dev/full")
    with pytest.raises(DownloadFailed, match="The disk is full"):
        download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path)
    assert files_in(tmp_path) == []


def test_a_disk_that_fills_up_midway_removes_what_was_written(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = [0]
    real_write = downloads._write_all

    def fill_up(file, data):  # type: ignore[no-untyped-def]
        if written[0] >= 2 * MiB:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written[0] += len(data)
        real_write(file, data)

    monkeypatch.setattr(downloads, "_write_all", fill_up)
    with pytest.raises(DownloadFailed, match="The disk is full.*removed"):
        download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path)
    assert files_in(tmp_path) == []


def test_a_model_bigger_than_the_free_space_is_refused_before_writing(server: FileServer, tmp_path: Path) -> None:
    server.behaviour.announce = 10**15  # a petabyte
    with pytest.raises(DownloadFailed, match="Not enough disk space"):
        download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path)
    assert files_in(tmp_path) == []


def test_one_download_of_a_file_at_a_time(server: FileServer, tmp_path: Path) -> None:
    with (tmp_path / "small.gguf.part").open("ab") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)  # another tab is downloading it
        with pytest.raises(DownloadFailed, match="already downloading"):
            download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path)
    assert server.requests == []


def test_a_model_already_there_is_not_downloaded_again(server: FileServer, tmp_path: Path) -> None:
    download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path)
    with pytest.raises(DownloadFailed, match="already in"):
        download(server.url("/org/repo/resolve/main/small.gguf"), tmp_path)
    assert len(server.requests) == 1


def test_hugging_face_page_links_become_file_links() -> None:
    assert check_url(" https://huggingface.co/org/repo/blob/main/m.gguf ") == (
        "https://huggingface.co/org/repo/resolve/main/m.gguf"
    )
    assert check_url("https://example.com/blob/m.gguf") == "https://example.com/blob/m.gguf"


def test_the_file_is_never_held_in_memory(tmp_path: Path) -> None:
    data = crafted_gguf(32 * MiB)
    with FileServer({"/big.gguf": data}) as server:
        tracemalloc.start()
        try:
            download(server.url("/big.gguf"), tmp_path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # the server thread holds its copy of the file, outside what the download allocates
    assert peak < len(data) + 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {len(data) / MiB:.0f} MiB file"


def test_the_bundled_model_cut_midway_and_resumed(tmp_path: Path) -> None:
    source = find_bundled_model()
    assert source is not None, "make install puts SmolLM2 in the venv"
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    size = source.stat().st_size
    with FileServer({"/HuggingFaceTB/resolve/main/smollm2-copy.gguf": source}) as server:
        server.behaviour.cuts = [size // 2]
        url = server.url("/HuggingFaceTB/resolve/main/smollm2-copy.gguf")
        started = time.monotonic()
        with pytest.raises(DownloadInterrupted):
            download(url, tmp_path)
        kept = (tmp_path / "smollm2-copy.gguf.part").stat().st_size
        done = download(url, tmp_path)
        seconds = time.monotonic() - started
    assert server.ranges == [None, f"bytes={kept}-"]
    assert done.sha256 == expected and done.size == size and done.resumed_from == kept
    print(
        f"bundled model, {size / 1e6:.0f} MB with a cut at {kept / 1e6:.0f} MB: {seconds:.2f} s, {size / 1e6 / seconds:.0f} MB/s"
    )
