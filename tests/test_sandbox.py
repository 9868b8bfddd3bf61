"""The Run code sandbox with the real bubblewrap: a normal run, and every attack on the list, each a
test that fails if the attack gets through. Limits are small so the attacks end quickly; the wall
clock is generous because two shared cores can be busy with other work."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest

import settings
from utils import sandbox
from utils.sandbox import RunResult, SandboxLimits, SandboxUnavailable, run_python

SECRET = "sk-sandbox-test-d41d8cd98f00b204"
FAST = SandboxLimits(wall_seconds=30, cpu_seconds=2, memory_bytes=512 << 20, processes=16)


@pytest.fixture(autouse=True)
def bubblewrap() -> None:
    # No skip: without bubblewrap Run code cannot work, and `make test` installs it.
    assert sandbox.available() is None, sandbox.available()


def run(code: str, files: dict[str, bytes] | None = None, limits: SandboxLimits = FAST) -> RunResult:
    return run_python(code, files, limits)


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (red pixels) written with zlib alone, as the code in the sandbox writes it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG_CODE = r"""
import os, struct, zlib

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
os.makedirs("plots", exist_ok=True)
with open("plots/chart.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
"""


def test_a_normal_run_prints_reads_an_attached_csv_and_returns_the_png_it_wrote() -> None:
    code = (
        "import csv\n"
        "rows = list(csv.DictReader(open('sales.csv', newline='')))\n"
        "print('total', sum(int(r['amount']) for r in rows))\n" + PNG_CODE
    )
    files = {"sales.csv": b"month,amount\njan,3\nfeb,4\n", "logo.png": png(1, 1)}

    result = run(code, files)

    assert result.stdout == "total 7\n", result.stderr
    assert result.exit_code == 0 and not result.timed_out and result.killed_reason is None
    assert result.images == [("plots/chart.png", png())]  # the attached logo.png was not written by the code
    assert 0 < result.duration < FAST.wall_seconds


def test_an_error_in_the_code_is_its_traceback_not_a_limit() -> None:
    result = run("print('before')\n1 / 0")

    assert result.stdout == "before\n"
    assert result.exit_code == 1 and "ZeroDivisionError" in result.stderr
    assert result.killed_reason is None


def test_numpy_and_pandas_from_the_apps_environment_work_inside() -> None:
    result = run(
        "import numpy, pandas\nprint(pandas.DataFrame({'a': numpy.arange(3)})['a'].sum())",
        limits=SandboxLimits(wall_seconds=60),
    )

    assert result.stdout == "3\n", result.stderr


def test_an_infinite_loop_is_stopped_by_its_cpu_limit() -> None:
    result = run("while True:\n    pass")

    assert result.exit_code != 0
    assert result.killed_reason == "The code used more than 2 s of CPU time and was stopped."


def test_a_sleeping_run_is_stopped_at_the_wall_clock() -> None:
    started = time.monotonic()
    result = run("import time\nprint('going', flush=True)\ntime.sleep(60)", limits=SandboxLimits(wall_seconds=3))

    assert result.timed_out and result.stdout == "going\n"
    assert result.killed_reason == "The code ran longer than 3 s and was stopped."
    assert time.monotonic() - started < 10


def test_a_fork_bomb_meets_the_process_limit_and_a_sibling_run_still_completes() -> None:
    counted = run(
        "import os, time\nn = 0\nfor _ in range(500):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(3)\n        os._exit(0)\n    n += 1\nprint(n)"
    )
    assert 0 < int(counted.stdout) < FAST.processes, counted  # the runner and bwrap's init take two

    bomb_code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    bomb: list[RunResult] = []
    thread = threading.Thread(target=lambda: bomb.append(run(bomb_code, limits=SandboxLimits(wall_seconds=8))))
    thread.start()
    time.sleep(1)
    sibling = run("print(sum(range(10)))")  # a second session's run, during the bomb
    thread.join(60)

    assert sibling.stdout == "45\n" and sibling.killed_reason is None
    assert bomb and bomb[0].timed_out and bomb[0].killed_reason
    assert os.getpid() > 0 and threading.active_count() >= 1  # the app (this process) is alive


def test_a_4_gb_allocation_is_refused() -> None:
    result = run("data = bytearray(4 << 30)\nprint('allocated', len(data))")

    assert "allocated" not in result.stdout and "MemoryError" in result.stderr
    assert result.killed_reason == "The code tried to use more than 512 MiB of memory and was stopped."


def test_writing_1_gb_stops_at_the_file_limit_and_many_files_stop_at_the_disk_limit() -> None:
    limits = SandboxLimits(wall_seconds=60, file_bytes=32 << 20, disk_bytes=64 << 20)
    one = run("f = open('big', 'wb')\nfor _ in range(1024):\n    f.write(b'x' * (1 << 20))", limits=limits)
    many = run(
        "for i in range(32):\n    with open(f'part{i}', 'wb') as f:\n        f.write(b'x' * (16 << 20))",
        limits=limits,
    )
    elsewhere = run(
        "import os\nfor p in ('/usr/x', '/x', '/opt/venv/x', '/dev/x', '/sandbox/x'):\n"
        "    try:\n        open(p, 'wb')\n        print('wrote', p)\n    except OSError as e:\n        print(p, e.errno)"
    )

    assert one.killed_reason == "The code tried to write a file larger than 32 MiB; the write was refused."
    assert many.killed_reason == "The code filled the sandbox's 64 MiB of disk; the write was refused."
    assert "wrote" not in elsewhere.stdout and elsewhere.stdout.count("\n") == 5, elsewhere


def test_the_apps_env_file_conversations_and_environment_are_out_of_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"GROQ_API_KEY={SECRET}\n")
    (tmp_path / "conversations.json").write_text(f'{{"secret": "{SECRET}"}}')
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    real_root = Path(settings.__file__).resolve().parent
    paths = [tmp_path / ".env", tmp_path / "conversations.json", real_root / ".env", real_root / "conversations.json"]
    code = f"""
import glob, os
for path in {[str(p) for p in paths]!r} + glob.glob('/proc/*/environ') + ['/proc/1/cmdline']:
    try:
        print(path, open(path, 'rb').read())
    except OSError as error:
        print(path, type(error).__name__)
print(dict(os.environ))
print(os.listdir('/'), os.listdir('/opt/venv'))
"""
    result = run(code)

    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "GROQ_API_KEY" not in result.stdout
    for path in paths:
        assert f"{path} FileNotFoundError" in result.stdout


def test_a_socket_reaches_nothing_on_the_host() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0bnagpt-sandbox-test-{port}")
    abstract.listen()
    abstract.settimeout(0.5)
    code = f"""
import socket
for family, address in ((socket.AF_INET, ('127.0.0.1', {port})), (socket.AF_UNIX, '\\0bnagpt-sandbox-test-{port}')):
    s = socket.socket(family)
    s.settimeout(3)
    try:
        s.connect(address)
        print('connected', address)
    except OSError as error:
        print('refused', type(error).__name__)
socket.getaddrinfo('localhost.localdomain.invalid', 80)
"""
    try:
        result = run(code)
        for server in (listener, abstract):
            with pytest.raises(TimeoutError):
                server.accept()
    finally:
        listener.close()
        abstract.close()

    assert "connected" not in result.stdout and result.stdout.count("refused") == 2, result
    assert result.killed_reason == "The code tried to use the network, which the sandbox does not have."


def test_killing_the_parent_or_everything_leaves_the_app_alive() -> None:
    me = os.getpid()
    result = run(
        f"import os, signal\nfor pid in ({me}, 1, -1):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError as e:\n        print(pid, e.errno, flush=True)\n"
        "os.kill(os.getppid(), signal.SIGKILL)"
    )
    after = run("print('next run')")

    assert result.killed_reason and "stopped its own sandbox" in result.killed_reason
    assert after.stdout == "next run\n"  # this process (the app) survived and can run again
    os.kill(me, 0)


def test_printing_100_mb_is_cut_at_the_output_limit() -> None:
    limits = SandboxLimits(wall_seconds=30, output_bytes=256 << 10)
    started = time.monotonic()
    result = run("import sys\nsys.stdout.write('x' * 100_000_000)\nsys.stdout.flush()", limits=limits)

    assert len(result.stdout) + len(result.stderr) <= 256 << 10
    assert result.killed_reason == "The code printed more than 256 KiB; the output was cut there and the run stopped."
    assert time.monotonic() - started < 20


def test_several_runs_at_once_do_not_interfere() -> None:
    results: dict[int, RunResult] = {}

    def one(i: int) -> None:
        results[i] = run(f"open('f', 'w').write('{i}')\nprint(open('f').read())")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert {i: r.stdout for i, r in results.items()} == {i: f"{i}\n" for i in range(4)}


def test_without_bubblewrap_it_says_how_to_install_it_and_never_runs_unsandboxed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox, "_works", False)
    monkeypatch.setattr(sandbox, "_which", lambda name: None)

    assert sandbox.available() == "Run code needs bubblewrap: sudo apt-get install bubblewrap"
    with pytest.raises(SandboxUnavailable, match="sudo apt-get install bubblewrap"):
        run_python("print(1)", None, FAST)


def test_an_attached_file_name_cannot_leave_the_working_folder() -> None:
    result = run("import os\nprint(sorted(os.listdir('.')))", {"../../etc/evil.txt": b"x"})

    assert result.stdout == "['.tmp', 'evil.txt']\n"
    with pytest.raises(ValueError):
        run("pass", {"..": b"x"})


def test_a_sandbox_that_cannot_start_is_reported_not_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system_binds = sandbox._system_binds
    missing = str(tmp_path / "gone")
    monkeypatch.setattr(sandbox, "_system_binds", lambda: (system_binds()[0] + [(missing, "/gone")], system_binds()[1]))
    monkeypatch.setattr(sandbox, "_works", False)

    with pytest.raises(SandboxUnavailable, match="could not start its bubblewrap sandbox"):
        sandbox._run("print('ran')", {}, FAST)
    problem = sandbox.available()
    assert problem and problem.startswith("Run code could not start its bubblewrap sandbox (bwrap: ")
