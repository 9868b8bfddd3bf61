"""Run untrusted Python in a bubblewrap sandbox, never in the app's process.

Each run gets its own namespaces (user, pid, network, ipc, uts, mount): no network, no view of
the app's processes, a read-only system, and one size-capped tmpfs at /work as the only place
it can write. The app's folder, its `.env` and conversations are simply not there, and the
environment is cleared, so no API key can leak. Limits are set inside the sandbox, after the
user namespace exists: RLIMIT_NPROC is counted per user namespace (Linux 5.14+), so a fork
bomb meets its own small count, not the app's threads, and runs at once do not share it.

Root is exempt from RLIMIT_NPROC whatever the limit, so when the app runs as root the sandbox
runs as `nobody`; the paths it needs (which may sit under a private /root) are first bind-mounted
by root into a staging folder, in a mount namespace of its own, that `nobody` can read.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

INSTALL_HINT = "Run code needs bubblewrap: sudo apt-get install bubblewrap"
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
NOBODY = 65534
WORKDIR = "/work"
INSIDE_VENV = "/opt/venv"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_IMAGES = 20
# Pieces of /etc that Python and its libraries read; nothing with a name or a secret in it.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/mime.types", "/etc/nsswitch.conf")
ETC_FOLDERS = ("/etc/fonts",)
PASSWD = b"root:x:0:0::/:/usr/sbin/nologin\nsandbox:x:1000:1000:sandbox:/work:/bin/sh\n"
GROUP = b"root:x:0:\nsandbox:x:1000:\n"
SANDBOX_ENV = {
    "PATH": f"{INSIDE_VENV}/bin:/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONPATH": WORKDIR,
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    # one BLAS thread: threads count as processes, and two cores are shared with the app
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here; `str(error)` says how to fix it."""


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 20.0  # the whole run, then every process in it is killed
    cpu_seconds: int = 10  # per process (RLIMIT_CPU)
    memory_bytes: int = 1 << 30  # address space per process (RLIMIT_AS)
    processes: int = 16  # tasks (processes and threads) in the sandbox (RLIMIT_NPROC)
    file_bytes: int = 64 << 20  # one file (RLIMIT_FSIZE)
    disk_bytes: int = 128 << 20  # the /work tmpfs, attached files included
    output_bytes: int = 1 << 20  # stdout and stderr together, then the run is killed
    open_files: int = 256


@dataclass(frozen=True)
class RunResult:
    stdout: str
    stderr: str
    exit_code: int  # negative: killed by that signal
    timed_out: bool
    killed_reason: str | None  # one sentence when a limit stopped the code or it tried what is not allowed
    images: list[tuple[str, bytes]] = field(default_factory=list)  # PNGs the code wrote, by path under /work
    duration: float = 0.0


# Runs inside the sandbox as its first process: set the limits, run the code as a child, then
# send the PNGs it wrote on the status pipe. The code can reach this pipe too (same uid), so the
# app treats what arrives as untrusted and checks it.
RUNNER = r"""
import json, os, resource, struct, sys
limits, status_fd = json.loads(sys.argv[1]), int(sys.argv[2])
os.write(status_fd, b"S")  # the sandbox is up: anything that fails from here on is the code's doing
for name, soft, hard in limits["rlimits"]:
    resource.setrlimit(getattr(resource, name), (soft, hard))
for fd in os.listdir("/proc/self/fd"):  # the code inherits only stdin, stdout and stderr
    if int(fd) > 2 and int(fd) != status_fd:
        try:
            os.close(int(fd))
        except OSError:
            pass
os.set_inheritable(status_fd, False)
def files():
    for root, dirs, names in os.walk("/work"):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for n in names:
            p = os.path.join(root, n)
            try:
                s = os.lstat(p)
            except OSError:
                continue
            if n.lower().endswith(".png") and os.path.isfile(p) and not os.path.islink(p):
                yield p, (s.st_size, s.st_mtime_ns)
before = dict(files())
try:
    pid = os.posix_spawn(sys.executable, [sys.executable, "-s", "/sandbox/main.py"], os.environ)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
except OSError as error:
    print(f"The sandbox could not start the code: {error}", file=sys.stderr)
    code = 126
status = os.fdopen(status_fd, "wb")
sent = 0
for path, stamp in files():
    if before.get(path) == stamp or sent >= limits["max_images"]:
        continue
    try:
        with open(path, "rb") as f:
            data = f.read(limits["max_image_bytes"] + 1)
    except OSError:
        continue
    if len(data) <= limits["max_image_bytes"]:
        name = os.path.relpath(path, "/work").encode()
        status.write(b"I" + struct.pack(">IQ", len(name), len(data)) + name + data)
        sent += 1
status.write(b"E" + struct.pack(">i", code))
status.close()
"""


@dataclass
class _Streams:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    status: bytearray = field(default_factory=bytearray)


def _which(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def _python_paths() -> tuple[list[tuple[str, str]], str]:
    """Read-only binds (host, inside) for this Python and its packages, and the interpreter inside."""
    base = os.path.realpath(sys.base_prefix)
    binds = [] if base == "/usr" or base.startswith("/usr/") else [(base, base)]
    if sys.prefix != sys.base_prefix:  # a venv: its site-packages at /opt/venv, nothing else of the app's folder
        binds.append((os.path.realpath(sys.prefix), INSIDE_VENV))
        return binds, f"{INSIDE_VENV}/bin/{Path(sys.executable).name}"
    return binds, os.path.realpath(sys.executable)


def _system_binds() -> tuple[list[tuple[str, str]], list[str]]:
    """Binds and symlink arguments for /usr, the /lib* and /bin links of a merged-/usr system, and /etc pieces."""
    binds: list[tuple[str, str]] = [("/usr", "/usr")]
    args: list[str] = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            binds.append((top, top))
    binds += [(f, f) for f in ETC_FILES if os.path.isfile(f)]
    # fontconfig's settings (no names, no secrets): charts get their fonts without an error on stderr
    binds += [(d, d) for d in ETC_FOLDERS if os.path.isdir(d)]
    return binds, args


def _rlimits(limits: SandboxLimits) -> list[tuple[str, int, int]]:
    return [
        ("RLIMIT_CPU", limits.cpu_seconds, limits.cpu_seconds + 1),  # SIGXCPU, then SIGKILL a second later
        ("RLIMIT_AS", limits.memory_bytes, limits.memory_bytes),
        ("RLIMIT_NPROC", limits.processes, limits.processes),
        ("RLIMIT_FSIZE", limits.file_bytes, limits.file_bytes),
        ("RLIMIT_NOFILE", limits.open_files, limits.open_files),
        ("RLIMIT_CORE", 0, 0),  # no core dump handed to the host's crash handler
    ]


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    _write_all(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _file_name(name: str) -> str:
    clean = Path(name.replace("\\", "/")).name
    if clean in ("", ".", "..") or "\x00" in clean or len(clean.encode()) > 255:
        raise ValueError(f"{name!r} cannot be a file name in the sandbox.")
    return clean


@contextmanager
def _staged(binds: list[tuple[str, str]], as_root: bool) -> Iterator[tuple[list[tuple[str, str]], list[str]]]:
    """The binds as bwrap must see them, and the command that starts bwrap.

    As root: `unshare` makes a private mount namespace, root bind-mounts each source into a
    staging folder that `nobody` can traverse, and `setpriv` becomes `nobody` before bwrap.
    """
    if not as_root:
        yield binds, []
        return
    stage = tempfile.mkdtemp(prefix="bnagpt-sandbox-")
    try:
        os.chmod(stage, 0o755)
        staged = []
        for i, (source, inside) in enumerate(binds):
            point = os.path.join(stage, str(i))
            if os.path.isdir(source):
                os.mkdir(point, 0o755)
            else:
                os.close(os.open(point, os.O_CREAT | os.O_WRONLY, 0o644))
            staged.append((point, inside))
        script = (
            'stage=$1; n=$2; shift 2; i=0; while [ "$i" -lt "$n" ]; do '
            'mount --rbind -- "$1" "$stage/$i" || exit 125; shift; i=$((i+1)); done; '
            f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --inh-caps=-all -- " + '"$@"'
        )
        prefix = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", stage]
        prefix += [str(len(binds)), *(source for source, _ in binds)]
        yield staged, prefix
    finally:
        # never a recursive delete here: had a bind mount leaked to the host, it would delete /usr
        for i, (source, _) in enumerate(binds):
            with suppress(OSError):
                (os.rmdir if os.path.isdir(source) else os.unlink)(os.path.join(stage, str(i)))
        with suppress(OSError):
            os.rmdir(stage)


def _bwrap_args(binds: list[tuple[str, str]], links: list[str], limits: SandboxLimits) -> list[str]:
    args = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    args += ["--cap-drop", "ALL", "--uid", "1000", "--gid", "1000", "--hostname", "sandbox"]
    for source, inside in binds:
        args += ["--ro-bind", source, inside]
    args += links
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(16 << 20), "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    args += ["--size", str(limits.disk_bytes), "--tmpfs", WORKDIR, "--dir", f"{WORKDIR}/.tmp"]
    args += ["--symlink", f"{WORKDIR}/.tmp", "/tmp"]
    return args


def _reason(result: RunResult, limits: SandboxLimits, output_cut: bool, runner_done: bool) -> str | None:
    """One sentence for what stopped the code, from what the host saw first, then the code's last words."""
    if output_cut:
        return f"The code printed more than {_size(limits.output_bytes)}; the output was cut there and the run stopped."
    if result.timed_out:
        return f"The code ran longer than {limits.wall_seconds:g} s and was stopped."
    if not runner_done:
        return "The code stopped its own sandbox (it killed the process that ran it); the run ended there."
    code = result.exit_code
    if code == -signal.SIGXCPU:
        return f"The code used more than {limits.cpu_seconds} s of CPU time and was stopped."
    if code == -signal.SIGXFSZ:
        return f"The code tried to write a file larger than {_size(limits.file_bytes)} and was stopped."
    last = result.stderr.strip().splitlines()[-1] if code and result.stderr.strip() else ""
    if "MemoryError" in last or "Cannot allocate memory" in last:
        return f"The code tried to use more than {_size(limits.memory_bytes)} of memory and was stopped."
    if "Resource temporarily unavailable" in last or "BlockingIOError" in last:
        return f"The code tried to run more than {limits.processes} processes or threads at once; the extra ones were refused."
    if "File too large" in last:
        return f"The code tried to write a file larger than {_size(limits.file_bytes)}; the write was refused."
    if "No space left on device" in last:
        return f"The code filled the sandbox's {_size(limits.disk_bytes)} of disk; the write was refused."
    if any(s in last for s in ("Network is unreachable", "Temporary failure in name resolution", "gaierror")):
        return "The code tried to use the network, which the sandbox does not have."
    return None


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def _images(status: bytes) -> tuple[list[tuple[str, bytes]], int | None]:
    """The PNGs and the exit code the runner sent; anything malformed ends the reading there."""
    images: list[tuple[str, bytes]] = []
    at = 1  # after the runner's b"S"
    while at < len(status):
        kind = status[at : at + 1]
        if kind == b"E" and len(status) >= at + 5:
            return images, struct.unpack(">i", status[at + 1 : at + 5])[0]
        if kind != b"I" or len(status) < at + 13:
            break
        name_len, data_len = struct.unpack(">IQ", status[at + 1 : at + 13])
        name = status[at + 13 : at + 13 + name_len].decode("utf-8", "replace")
        data = status[at + 13 + name_len : at + 13 + name_len + data_len]
        at += 13 + name_len + data_len
        if data.startswith(PNG_MAGIC) and len(images) < MAX_IMAGES and name_len < 1024:
            images.append((name, bytes(data)))
    return images, None


def _kill(process: subprocess.Popen[bytes]) -> None:
    # bwrap leads its own process group; killing it takes the pid namespace (and all in it) down
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _pump(process: subprocess.Popen[bytes], status_fd: int, limits: SandboxLimits) -> tuple[_Streams, bool, bool]:
    """Read stdout, stderr and the status pipe until they close; kill on the output cap or the deadline."""
    assert process.stdout is not None and process.stderr is not None
    streams = _Streams()
    caps = {"stdout": limits.output_bytes, "stderr": limits.output_bytes, "status": limits.disk_bytes + (1 << 20)}
    sel = selectors.DefaultSelector()
    sel.register(process.stdout.fileno(), selectors.EVENT_READ, "stdout")
    sel.register(process.stderr.fileno(), selectors.EVENT_READ, "stderr")
    sel.register(status_fd, selectors.EVENT_READ, "status")
    deadline = time.monotonic() + limits.wall_seconds
    output_cut = timed_out = killed = False
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0 and not killed:
            timed_out = killed = True
            _kill(process)
            deadline = time.monotonic() + 5  # the namespace is dying: drain what is left, briefly
            continue
        if left <= 0:
            break
        for key, _ in sel.select(timeout=left):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                continue
            buffer: bytearray = getattr(streams, key.data)
            room = caps[key.data] - len(buffer)
            if key.data != "status":
                room = min(room, limits.output_bytes - len(streams.stdout) - len(streams.stderr))
            buffer += chunk[: max(room, 0)]
            if len(chunk) > room and not killed:
                output_cut = key.data != "status"
                killed = True
                _kill(process)
                deadline = time.monotonic() + 5
    sel.close()
    return streams, output_cut, timed_out


def run_python(code: str, files: dict[str, bytes] | None, limits: SandboxLimits) -> RunResult:
    """Run `code` with `files` in /work (its working folder) inside a fresh sandbox; never unsandboxed."""
    problem = available()
    if problem:
        raise SandboxUnavailable(problem)
    return _run(code, files or {}, limits)


def _run(code: str, files: dict[str, bytes], limits: SandboxLimits) -> RunResult:
    names = {_file_name(name): data for name, data in files.items()}
    if sum(len(data) for data in names.values()) > limits.disk_bytes:
        raise ValueError(f"The attached files are larger than the sandbox's {_size(limits.disk_bytes)} of disk.")
    python_binds, python = _python_paths()
    system, links = _system_binds()
    fds: list[int] = []
    started = time.monotonic()
    try:
        data_args: list[str] = []
        for inside, data in [("/sandbox/main.py", code.encode()), ("/etc/passwd", PASSWD), ("/etc/group", GROUP)]:
            fds.append(_memfd("bnagpt", data))
            data_args += ["--ro-bind-data", str(fds[-1]), inside]
        file_args: list[str] = []
        for name, data in names.items():
            fds.append(_memfd("attachment", data))
            file_args += ["--file", str(fds[-1]), f"{WORKDIR}/{name}"]
        read_status, write_status = os.pipe()
        fds.append(write_status)
        rlimits = {"rlimits": _rlimits(limits), "max_images": MAX_IMAGES, "max_image_bytes": limits.file_bytes}
        # /usr and /etc are world-readable; only Python's folders may sit under a private /root
        with _staged(python_binds, os.geteuid() == 0) as (staged, prefix):
            command = prefix + _bwrap_args(system + staged, links, limits) + data_args + file_args
            command += ["--remount-ro", "/", "--chdir", WORKDIR, "--clearenv"]
            for key, value in SANDBOX_ENV.items():
                command += ["--setenv", key, value]
            command += ["--", python, "-I", "-S", "-c", RUNNER, json.dumps(rlimits), str(write_status)]
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=fds,
                    env={"PATH": SEARCH_PATH, "LANG": "C.UTF-8"},  # not the app's: it holds the API keys
                    start_new_session=True,
                    cwd="/",  # the sandbox can read its starter's working folder name (PWD); not the app's
                )
            finally:
                os.close(write_status)
                fds.remove(write_status)
            try:
                streams, output_cut, timed_out = _pump(process, read_status, limits)
            finally:
                os.close(read_status)
                _kill(process)
                process.wait()
                for pipe in (process.stdout, process.stderr):
                    if pipe is not None:
                        pipe.close()
    finally:
        for fd in fds:
            os.close(fd)
    if not streams.status.startswith(b"S") and not (output_cut or timed_out):
        # bwrap itself failed (a missing path, no user namespaces): a problem of this machine, never run without it
        detail = (streams.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1][:200]
        raise SandboxUnavailable(f"Run code could not start its bubblewrap sandbox ({detail}).")
    images, exit_code = _images(bytes(streams.status))
    result = RunResult(
        stdout=streams.stdout.decode("utf-8", "replace"),
        stderr=streams.stderr.decode("utf-8", "replace"),
        exit_code=exit_code if exit_code is not None else -signal.SIGKILL if timed_out else process.returncode,
        timed_out=timed_out,
        killed_reason=None,
        images=images,
        duration=time.monotonic() - started,
    )
    return replace(result, killed_reason=_reason(result, limits, output_cut, exit_code is not None))


_works = False


def available() -> str | None:
    """None if the sandbox works here, else a sentence saying how to make it work."""
    global _works
    if _works:
        return None
    needed = ["bwrap"] + (["unshare", "setpriv", "mount"] if os.geteuid() == 0 else [])
    if _which("bwrap") is None:
        return INSTALL_HINT
    missing = [name for name in needed if _which(name) is None]
    if missing:
        return f"Run code needs {', '.join(missing)} (util-linux): sudo apt-get install util-linux"
    try:
        probe = _run("print('ok')", {}, SandboxLimits(wall_seconds=20))
    except OSError as error:
        return f"Run code could not start bubblewrap ({error.strerror}). {INSTALL_HINT}"
    except SandboxUnavailable as error:
        return f"{error} It needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)."
    if probe.stdout.strip() != "ok":
        return f"Run code's sandbox did not run a test print ({probe.killed_reason or probe.stderr[-200:]})."
    _works = True
    return None
