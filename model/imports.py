"""Read another chat app's export into bnaGPT conversations, every branch kept.

Two formats: ChatGPT's "Export data" (the .zip as downloaded, its conversations.json, or the
split conversations-000.json… files at any depth in the zip) and Open WebUI's chat export (a
JSON list of chats, or one). Anything else reads as None, for bnaGPT's own import
(model.transfer.parse_import).

Kept: every user and assistant message with text, on every branch (an edited question or a
regenerated answer is a branch), with its time, the model that wrote it and how it ended;
the source's ids, so a second import of the same file can be recognised. Tool traffic (code the
model ran, its output, a quote) is kept as text in an assistant message labelled "[Tool …]",
because the answers after it refer to it. Left out, and counted: hidden system messages and
context (custom instructions, memory), the model's private reasoning, and browsing dumps
(pages the model read). A picture becomes "[image]". A left-out message's replies hang from
its nearest kept ancestor.

A zip is read in memory only, never extracted; member names with ".." or absolute paths are
ignored. Before a member is inflated its declared size is checked (MAX_RATIO times its packed
size, MAX_UNCOMPRESSED_BYTES in all); zipfile stops at the declared size while reading.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import math
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal, NamedTuple

from model.document import MAX_NAME_LENGTH
from model.message import Conversation, Message, Role, Status, suggest_name, utc_now
from model.transfer import ImportFailed

MAX_UNCOMPRESSED_BYTES = 2**30  # 1 GiB of JSON in all: parsed, that is already several GB of memory
MAX_RATIO = 200  # ChatGPT's JSON packs about 5-20 to 1; a zip bomb packs 1,000 to 1 and more
App = Literal["ChatGPT", "Open WebUI"]
_MEMBER = re.compile(r"conversations(-\d+)?\.json", re.IGNORECASE)
_OURS = re.compile(rb"\A(\xef\xbb\xbf)?\s*\{\s*\"version\"")  # bnaGPT's own files start so
_HIDDEN_TYPES = {"user_editable_context", "model_editable_context"}
_REASONING_TYPES = {"thoughts", "reasoning_recap"}
_DUMP_TYPES = {"tether_browsing_display", "sonic_webpage"}  # whole web pages and result lists
_OPENWEBUI_REASONING = re.compile(r"<details type=\"reasoning\".*?</details>\s*", re.DOTALL)


@dataclass
class ImportRead:
    """What an export held: the conversations read, and what was left out on the way."""

    app: App
    conversations: list[Conversation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one "“Title” (ChatGPT): reason" each
    hidden: int = 0  # hidden system messages and context with text (custom instructions, memory)
    reasoning: int = 0  # the model's private thoughts ("Thought for 2m")
    tools_as_text: int = 0  # tool calls and outputs kept as "[Tool …]" text
    tools_dropped: int = 0  # browsing dumps and tool messages of other kinds
    images: int = 0  # pictures, each now "[image]"
    other_parts: int = 0  # audio, files and other non-text parts, each now "[audio]" / "[file]"
    loops_broken: int = 0  # parent links that went round in a circle, cut at the oldest message

    def add(self, counts: Counter[str]) -> None:
        for name, number in counts.items():
            setattr(self, name, getattr(self, name) + number)


def read_export(data: bytes, filename: str) -> ImportRead | None:
    """The conversations in a ChatGPT or Open WebUI export; None for any other file.

    ImportFailed (a sentence for the user) if it is one of those exports but cannot be read;
    nothing partial is returned."""
    is_zip = data[:4] in (b"PK\x03\x04", b"PK\x05\x06")
    if is_zip or filename.lower().endswith(".zip"):
        if not is_zip:
            raise ImportFailed(f"“{filename}” is not a zip archive, though its name ends in .zip; download it again.")
        with _collector_paused():
            return _finish(_read_zip(data))
    if _OURS.match(data[:200]) or len(data) > MAX_UNCOMPRESSED_BYTES:
        return None  # bnaGPT's own file, or too big: parse_import says so
    with _collector_paused():
        return _read_json(data, filename)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsed JSON and the values made from it hold no reference cycles, so the cycle collector
    has nothing to free during a read; left on, it walks the growing heap again and again
    (json.loads of a 90 MB export: 2.6 s instead of 0.6 s)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _read_json(data: bytes, filename: str) -> ImportRead | None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8): parse_import says which
        return None
    app = detect(obj)
    if app is None:
        if _MEMBER.fullmatch(PurePosixPath(filename).name) and obj == []:
            raise ImportFailed(f"“{filename}” holds no conversations.")
        return None
    read = ImportRead(app)
    _read_items(obj if isinstance(obj, list) else [obj], read)
    return _finish(read)


def detect(obj: object) -> App | None:
    """Which app wrote this parsed JSON, judged by its first conversation; None if neither."""
    first = next((item for item in obj if isinstance(item, dict)), None) if isinstance(obj, list) else obj
    if not isinstance(first, dict):
        return None
    if "mapping" in first and ("current_node" in first or "create_time" in first or "title" in first):
        return "ChatGPT"
    chat = _dict(first.get("chat")) or first
    if isinstance(chat.get("history"), dict) or ("chat" in first and isinstance(chat.get("messages"), list)):
        return "Open WebUI"
    return None


# --- the zip ---


def _read_zip(data: bytes) -> ImportRead:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImportFailed(f"The zip archive is damaged ({exc}); download the export again.") from exc
    with archive:
        members = sorted((i for i in archive.infolist() if _wanted(i)), key=lambda i: i.filename)
        if not members:
            raise ImportFailed(
                "The zip holds no conversations.json, so it is not a ChatGPT export; "
                "use the zip ChatGPT's Settings → Data controls → Export data sends you."
            )
        _check_sizes(members)
        read = ImportRead("ChatGPT")
        for info in members:  # one member at a time: its raw JSON is freed before the next
            items = _load_member(archive, info)
            if not isinstance(items, list) or (items and detect(items) != "ChatGPT"):
                raise ImportFailed(f"{info.filename} in the zip is not a list of ChatGPT conversations.")
            _read_items(items, read)
    return read


def _wanted(info: zipfile.ZipInfo) -> bool:
    """A conversations file, with a name that could not point outside a folder if extracted."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    unsafe = path.is_absolute() or ".." in path.parts or re.match(r"[A-Za-z]:", info.filename)
    return not (unsafe or info.is_dir() or "__MACOSX" in path.parts) and bool(_MEMBER.fullmatch(path.name))


def _check_sizes(members: list[zipfile.ZipInfo]) -> None:
    for info in members:
        if info.flag_bits & 0x1:
            raise ImportFailed(f"{info.filename} in the zip is password-protected; export it again without a password.")
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ImportFailed(
                f"{info.filename} in the zip would grow from {_size(info.compress_size)} to {_size(info.file_size)}, "
                f"over {MAX_RATIO} times: that is how a zip bomb looks, so it was not opened."
            )
    total = sum(info.file_size for info in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise ImportFailed(
            f"The conversations in the zip take {_size(total)} unpacked; at most "
            f"{_size(MAX_UNCOMPRESSED_BYTES)} can be imported at once."
        )


def _load_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> object:
    try:
        with archive.open(info) as member:
            raw = member.read(info.file_size + 1)  # zipfile stops at the declared size; +1 would show more
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise ImportFailed(f"{info.filename} in the zip is damaged ({exc}); download the export again.") from exc
    if len(raw) > info.file_size:
        raise ImportFailed(f"{info.filename} in the zip is larger than the zip says; download the export again.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{info.filename} in the zip is not UTF-8 text (byte {exc.start}).") from exc
    del raw  # the parse is the peak of a read: let the bytes go first
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(
            f"{info.filename} in the zip is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "the export may be cut short, so download it again."
        ) from exc
    except RecursionError as exc:
        raise ImportFailed(f"{info.filename} in the zip is nested too deeply to be conversations.") from exc


def _size(number: int) -> str:
    return f"{number / 2**30:.1f} GB" if number >= 2**30 else f"{number / 2**20:.1f} MB"


# --- conversations ---


class _Node(NamedTuple):
    parent: str | None  # None: a root, or a parent the export does not hold
    order: tuple[float, int]  # siblings go oldest first, then in file order
    message: Message | None  # None: left out, its replies hang from its nearest kept ancestor


def _read_items(items: list[Any], read: ImportRead) -> None:
    """Read each conversation of `items`, emptying the list as it goes: a raw conversation is
    several times the size of what is made from it, so the peak stays near the raw file's."""
    reader = _chatgpt if read.app == "ChatGPT" else _openwebui
    for number, item in enumerate(items, start=1):
        items[number - 1] = None
        counts: Counter[str] = Counter()
        label = f"“{_title(item) or f'Conversation {number}'}” ({read.app})"
        if not isinstance(item, dict):
            read.skipped.append(f"{label}: not a conversation but {type(item).__name__}")
        elif isinstance(conv := reader(item, counts), str):
            read.skipped.append(f"{label}: {conv}")
        else:
            read.conversations.append(conv)
            read.add(counts)


def _finish(read: ImportRead) -> ImportRead:
    """One conversation per source (the newest copy), and ImportFailed if none could be read."""
    newest: dict[str, Conversation] = {}
    for conv in read.conversations:
        if conv.source not in newest or conv.updated_at > newest[conv.source].updated_at:
            newest[conv.source] = conv
    read.conversations = [conv for conv in read.conversations if newest[conv.source] is conv]
    if not read.conversations:
        if not read.skipped:
            raise ImportFailed(f"The {read.app} export holds no conversations.")
        more = f" (and {len(read.skipped) - 1} more)" if len(read.skipped) > 1 else ""
        raise ImportFailed(f"No conversation in the {read.app} export could be read: {read.skipped[0]}{more}.")
    return read


def _title(item: object) -> str:
    if not isinstance(item, dict):
        return ""
    chat = item.get("chat")
    title = item.get("title") or (chat.get("title") if isinstance(chat, dict) else "")
    return " ".join(title.split())[:MAX_NAME_LENGTH] if isinstance(title, str) else ""


def _chatgpt(item: dict[str, Any], counts: Counter[str]) -> Conversation | str:
    mapping = item.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        return "no messages"
    started = _iso(item.get("create_time")) or ""
    listed = {c: key for key, node in mapping.items() if isinstance(node, dict) for c in _list(node.get("children"))}
    nodes: dict[str, _Node] = {}
    for number, (key, node) in enumerate(mapping.items()):
        node = node if isinstance(node, dict) else {}
        message = node.get("message") if isinstance(node.get("message"), dict) else None
        parent = node.get("parent") if isinstance(node.get("parent"), str) else listed.get(key)
        kept = _chatgpt_message(message, str(key), started, counts) if message else None
        stamp = message.get("create_time") if message else None
        nodes[str(key)] = _Node(parent, (_seconds(stamp) or math.inf, number), kept)
    conversation_id = item.get("conversation_id") or item.get("id") or _fingerprint(item, mapping)
    return _conversation(item, nodes, item.get("current_node"), f"chatgpt:{conversation_id}", counts, _title(item))


def _chatgpt_message(message: dict[str, Any], key: str, started: str, counts: Counter[str]) -> Message | None:
    author, content, meta = (_dict(message.get(name)) for name in ("author", "content", "metadata"))
    role, kind = author.get("role"), content.get("content_type") or "text"
    text = _chatgpt_text(content, counts)
    if meta.get("is_visually_hidden_from_conversation") or role == "system" or kind in _HIDDEN_TYPES:
        said = any(isinstance(v, str) and v.strip() for k, v in content.items() if k != "content_type")
        counts["hidden"] += bool(text.strip() or said or meta.get("user_context_message_data"))
        return None
    if kind in _REASONING_TYPES or message.get("channel") == "analysis":
        counts["reasoning"] += kind != "reasoning_recap"  # a recap only says how long it thought
        return None
    recipient = message.get("recipient") or "all"
    call = role == "assistant" and recipient not in ("all", "assistant")
    if call or role != "user" and role != "assistant":  # a tool's call or output (or a role we do not know)
        if kind in _DUMP_TYPES or not text.strip():
            counts["tools_dropped"] += 1
            return None
        counts["tools_as_text"] += 1
        text = _tool_text(recipient if call else None, author.get("name"), content, text)
    if not text.strip():
        return None  # nothing to lose: an empty turn, as ChatGPT writes before a tool call
    status: Status = "complete"
    if role == "assistant" and not call:
        finish = _dict(meta.get("finish_details")).get("type")
        if finish == "max_tokens":
            status = "length"
        elif finish == "interrupted" or message.get("status") in ("in_progress", "finished_partial_completion"):
            status = "stopped"
    model = _str(meta.get("model_slug"))
    created = _iso(message.get("create_time")) or started or utc_now()
    return Message("user" if role == "user" else "assistant", text, created, status=status, model=model, id=key)


def _chatgpt_text(content: dict[str, Any], counts: Counter[str]) -> str:
    """The readable text of a ChatGPT message's content; non-text parts become markers, counted."""
    parts = content.get("parts")
    if not isinstance(parts, list):
        for name in ("text", "result", "content"):  # code and tool output; browsing; a reasoning recap
            if isinstance(content.get(name), str):
                return str(content[name])
        return ""
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):  # e.g. audio_transcription
            texts.append(part["text"])
        elif part is not None:
            texts.append(_marker(str(_dict(part).get("content_type") or ""), counts))
    return "\n\n".join(text for text in texts if text.strip())


def _marker(kind: str, counts: Counter[str]) -> str:
    counts["images" if "image" in kind else "other_parts"] += 1
    return "[image]" if "image" in kind else "[audio]" if "audio" in kind or "video" in kind else "[file]"


def _tool_text(call_to: str | None, name: object, content: dict[str, Any], text: str) -> str:
    """A tool call (`call_to` names the tool) or a tool's output as labelled text, code fenced."""
    if call_to is not None:  # the model's call: code for python, a query for the browser…
        language = content.get("language") if content.get("language") not in (None, "unknown") else ""
        return f"[Tool call: {call_to}]\n{_fenced(text, str(language))}"
    label = f"Tool output: {name}" if isinstance(name, str) and name else "Tool output"
    if content.get("content_type") == "execution_output":
        return f"[{label}]\n{_fenced(text, '')}"
    if content.get("content_type") == "tether_quote":
        source = content.get("title") or content.get("url") or content.get("domain") or ""
        return f"[Quote{f': {source}' if source else ''}]\n" + "\n".join(f"> {line}" for line in text.splitlines())
    return f"[{label}]\n{text}"


def _fenced(text: str, language: str) -> str:
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _openwebui(item: dict[str, Any], counts: Counter[str]) -> Conversation | str:
    chat = _dict(item.get("chat")) or item
    history = _dict(chat.get("history"))
    raw = history.get("messages")
    if isinstance(raw, dict) and raw:
        entries: Iterable[tuple[str, Any]] = ((str(k), v) for k, v in raw.items())
    elif isinstance(chat.get("messages"), list) and chat["messages"]:  # an old export: a flat list
        entries = ((str(_dict(m).get("id") or n), m) for n, m in enumerate(chat["messages"]))
    else:
        return "no messages"
    nodes: dict[str, _Node] = {}
    previous, linked = None, isinstance(raw, dict) and bool(raw)
    for number, (key, message) in enumerate(entries):
        message = _dict(message)
        parent = message.get("parentId") if linked or "parentId" in message else previous
        kept = _openwebui_message(message, key, counts)
        nodes[key] = _Node(
            parent if isinstance(parent, str) else None, (_seconds(message.get("timestamp")) or math.inf, number), kept
        )
        previous = key
    source = f"openwebui:{item.get('id') or chat.get('id') or _fingerprint(item, nodes)}"
    return _conversation(item, nodes, history.get("currentId"), source, counts, _title(item))


def _openwebui_message(message: dict[str, Any], key: str, counts: Counter[str]) -> Message | None:
    role, content = message.get("role"), message.get("content")
    if isinstance(content, list):  # parts in the OpenAI shape
        content = "\n\n".join(
            str(p.get("text")) if p.get("type") == "text" else _marker(str(p.get("type")), counts)
            for p in (_dict(p) for p in content)
        )
    text = content if isinstance(content, str) else ""
    if role == "assistant" and (reasoning := _OPENWEBUI_REASONING.findall(text)):
        counts["reasoning"] += len(reasoning)
        text = _OPENWEBUI_REASONING.sub("", text)
    for attached in _list(message.get("files")):
        kind = f"{_dict(attached).get('type')} {_dict(attached).get('content_type')}"
        text += "\n\n" + _marker(kind, counts)
    if role not in ("system", "user", "assistant"):
        counts["tools_dropped"] += 1
        return None
    if not text.strip():
        return None
    role_: Role = role
    status: Status = "stopped" if role == "assistant" and message.get("done") is False else "complete"
    model = _str(message.get("model")) if role == "assistant" else ""
    return Message(role_, text.strip(), _iso(message.get("timestamp")) or utc_now(), status=status, model=model, id=key)


def _conversation(
    item: dict[str, Any], nodes: dict[str, _Node], current: object, source: str, counts: Counter[str], title: str
) -> Conversation | str:
    messages, below = _tree(nodes, counts)
    if not messages:
        return "no messages with text"
    shown = below.get(current) if isinstance(current, str) else None
    if not shown:  # no current node, or nothing kept up its branch: the newest leaf
        parents = {m.parent_id for m in messages}
        leaves = [m for m in messages if m.id not in parents]
        shown = max(reversed(leaves), key=lambda m: m.created_at).id
    chat = _dict(item.get("chat"))
    created = _iso(item.get("create_time") or item.get("created_at") or chat.get("timestamp"))
    created = created or min(m.created_at for m in messages)
    updated = _iso(item.get("update_time") or item.get("updated_at")) or max(m.created_at for m in messages)
    conv = Conversation(
        name=title,
        messages=messages,
        created_at=created,
        updated_at=max(updated, created),
        current=shown,
        pinned=item.get("pinned") is True or item.get("is_starred") is True,
        archived=item.get("archived") is True or item.get("is_archived") is True,
        source=source,
    )
    path = conv.path()
    answers = [m.model for m in path if m.model]
    models = _list(chat.get("models"))
    model = item.get("default_model_slug") or (answers[-1] if answers else models[0] if models else "")
    name = title or suggest_name(path)
    return replace(conv, name=name, model=model if isinstance(model, str) else "")


def _tree(nodes: dict[str, _Node], counts: Counter[str]) -> tuple[tuple[Message, ...], dict[str, str]]:
    """The kept messages, parents first (each branch in turn), each hung from its nearest kept
    ancestor; and for every node, that ancestor ("" if none)."""
    parent = {key: node.parent if node.parent in nodes else None for key, node in nodes.items()}
    state: dict[str, int] = {}  # 1: on the walk up now, 2: known to reach a root
    for start in nodes:  # find loops in the parent links and cut each at its oldest message
        walk: list[str] = []
        key: str | None = start
        while key is not None and key not in state:
            state[key] = 1
            walk.append(key)
            key = parent[key]
        if key is not None and state[key] == 1:
            loop = walk[walk.index(key) :]
            parent[min(loop, key=lambda k: nodes[k].order)] = None
            counts["loops_broken"] += 1
        state.update(dict.fromkeys(walk, 2))
    children: dict[str | None, list[str]] = {}
    for key in sorted(nodes, key=lambda k: nodes[k].order, reverse=True):  # popped oldest first
        children.setdefault(parent[key], []).append(key)
    messages: list[Message] = []
    below: dict[str, str] = {}
    stack: list[tuple[str, str]] = [(key, "") for key in children.get(None, [])]
    while stack:
        key, ancestor = stack.pop()
        message = nodes[key].message
        if message is not None:
            messages.append(replace(message, parent_id=ancestor))
            ancestor = key
        below[key] = ancestor
        stack.extend((child, ancestor) for child in children.get(key, []))
    return tuple(messages), below


# --- small readers ---


def _seconds(value: object) -> float | None:
    """Epoch seconds from seconds, milliseconds or nanoseconds, or an ISO-8601 string."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    for limit, scale in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if abs(value) > limit:
            return value / scale
    return float(value)


def _iso(value: object) -> str | None:
    seconds = _seconds(value)
    try:
        moment = datetime.fromtimestamp(seconds, UTC) if seconds is not None and seconds > 0 else None
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _fingerprint(item: dict[str, Any], keys: Iterable[str]) -> str:
    """A stable id for a conversation the export gives none: from its title, time and node ids."""
    seed = json.dumps([_title(item), str(item.get("create_time") or item.get("created_at")), sorted(keys)])
    return hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:32]
