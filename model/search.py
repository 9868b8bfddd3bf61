"""Full-text search over every message of every conversation: an SQLite FTS5 index beside the file.

The conversations file stays the source of truth; the index is derived data in `<file>.search.db`,
kept so that a new process need not index 50 MB of text again before its first search. Before a
search, `SearchIndex` brings the index up to date with the conversations it is given: each
conversation has a fingerprint of its messages, and only those whose fingerprint differs from the
one indexed are indexed again, in one transaction. So the first search after a turn indexes one
conversation, a file rewritten by another process is noticed at the next search, and nothing here
runs during a turn.

How words match: text is NFKC-normalised and case-folded, and SQLite's unicode61 tokenizer drops
accents ("ação" is found by "acao"). Chinese, Japanese and Korean put no spaces between words, so
each of their characters is indexed as a word of its own and a query's run of them is a phrase
("北京" is "北 京", found inside a sentence); emoji are words too. A query's last word also matches
as the start of a word. Names match anywhere (as the name filter always did) and come first.
Snippets are cut from the conversations' own text, with each match between MARK_START and MARK_END.

The FTS table is contentless (it keeps no copy of the text, which would double the file); the
text it was given is kept compressed, one blob a conversation, because SQLite needs it to take a
conversation's words out again. A file that cannot be read is deleted and built again; one that
cannot be written (a read-only folder) is replaced by an index in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import unicodedata
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")
SCHEMA = "1"  # an index file with another schema is built again
MARK_START, MARK_END = "\ue000", "\ue001"  # private-use characters around a match in a snippet
SLOTS = 1 << 20  # a message's rowid: its conversation's number * SLOTS + its place in `messages`
BROAD = 10_000  # a query matching more messages than this is too common to rank: newest first
PREFIX_FROM = 3  # the last word matches as a prefix from this many characters ("a*" would be every word)

# Scripts written without spaces between words (and Hangul, whose words carry particles) and symbols
# (emoji): each character a word of its own.
_CJK = "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK += "\U00020000-\U0003134f"
_SYMBOLS = "\u00a6\u00a9\u00ae\u00b0\u2100-\u214f\u2190-\u2bff\u3200-\u33ff\ufffc\ufffd\U0001f000-\U0001faff"
_ONE_CHARACTER_WORDS = re.compile(f"([{_CJK}{_SYMBOLS}])")
_TOKEN = re.compile(f"[^\\W_{_CJK}]+|[{_CJK}{_SYMBOLS}]")
_WORD_CHAR = f"[^\\W_{_CJK}]"  # a letter or digit of a spaced script: a match does not start or end beside one
# unicode61 reads letters, digits, private-use characters and other symbols (So: emoji) as word characters
_TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co So'"


# SQLite's primary result codes: a file to build again, or one we cannot use (so: memory)
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_SCHEMA)
_UNUSABLE = (
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_PERM,
)


class SearchUnavailable(Exception):
    """The index could not be used; str() is a sentence for the user."""

    def __init__(self, path: Path | None, error: sqlite3.DatabaseError) -> None:
        self.path, self.error = path, error
        busy = getattr(error, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        super().__init__(
            f"another bnaGPT is updating the search index {path}; try again in a moment"
            if busy
            else f"the search index could not be used ({error}); try again, or delete {path}"
        )


class Indexed(Protocol):
    """What the index reads of a message."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...


class Searchable(Protocol):
    """What the index reads of a conversation."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def updated_at(self) -> str: ...
    @property
    def archived(self) -> bool: ...
    @property
    def messages(self) -> Sequence[Indexed]: ...


@dataclass(frozen=True)
class SearchHit:
    """A conversation's best match. `message_id` None: its name matched. `snippet` is the stored
    (untrusted) text around the match, on one line, each match between MARK_START and MARK_END."""

    conversation_id: str
    conversation_name: str
    message_id: str | None
    role: str  # the message's role, or "name"
    snippet: str
    rank: int  # 1 for the best hit
    matches: int = 1  # how many of the conversation's messages match (0 for a name)
    archived: bool = False

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as (text, is a match) pieces, in order."""
        pieces = re.split(f"[{MARK_START}{MARK_END}]", self.snippet)
        return [(piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece]


# --- text ---------------------------------------------------------------------------------


def index_text(text: str) -> str:
    """`text` as the tokenizer is given it: normalised, case-folded, one-character words spaced out."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\0", " ")  # NUL separates texts in the index
    return _ONE_CHARACTER_WORDS.sub(r" \1 ", text)


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)).lower()
    if len(base) == 1:
        return base
    lower = char.lower()
    return lower if len(lower) == 1 else char


def fold(text: str) -> str:
    """`text` lower-cased without accents, one character for one: a position in it is one in `text`."""
    if text.isascii():
        return text.lower()
    return "".join(map(_fold_char, text))


def query_words(query: str) -> list[list[str]]:
    """The query's words, each as the words the index holds for it (a Chinese word: its characters)."""
    words = []
    for word in query.split():
        tokens = [t for t in _TOKEN.findall(index_text(word)) if len(t) > 1 or _is_word_char(t)]
        if tokens:
            words.append(tokens)
    return words


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN" or unicodedata.category(char) in ("Co", "So")


def match_expression(words: list[list[str]]) -> str:
    """The FTS5 query: every word (a phrase of its tokens); the last one also as the start of a word."""
    phrases = ['"' + " ".join(tokens).replace('"', '""') + '"' for tokens in words]
    if len(words[-1][-1]) >= PREFIX_FROM:  # the word itself counts twice in the rank: it comes before longer words
        phrases[-1] = f"({phrases[-1]} OR {phrases[-1]}*)"
    return " AND ".join(phrases)


def _pattern(words: list[list[str]]) -> re.Pattern[str]:
    """Where the words are in folded text: whole words, the last one also as the start of a word."""
    alternatives = []
    for n, tokens in enumerate(words):
        body = r"[\W_]*".join(re.escape(fold(token)) for token in tokens)
        start = f"(?<!{_WORD_CHAR})" if re.match(_WORD_CHAR, tokens[0]) else ""
        end = ""
        if re.match(_WORD_CHAR, tokens[-1][-1]):
            prefix = n == len(words) - 1 and len(tokens[-1]) >= PREFIX_FROM
            end = f"{_WORD_CHAR}*" if prefix else f"(?!{_WORD_CHAR})"
        alternatives.append(start + body + end)
    return re.compile("|".join(f"(?:{a})" for a in sorted(alternatives, key=len, reverse=True)))


def _marked(text: str, spans: Iterable[tuple[int, int]], begin: int, end: int) -> str:
    """text[begin:end] on one line with the spans inside it marked; the markers are ours alone."""
    text = text.replace(MARK_START, "\ufffd").replace(MARK_END, "\ufffd")
    out, at = [], begin
    for start, stop in spans:
        if start >= at and stop <= end and stop > start:
            out += [text[at:start], MARK_START, text[start:stop], MARK_END]
            at = stop
    out.append(text[at:end])
    return re.sub(r"\s+", " ", "".join(out)).strip()


def snippet(text: str, words: list[list[str]] | re.Pattern[str], width: int = 160) -> str:
    """About `width` characters of `text` around its densest run of matches (of the query's `words`,
    or their `_pattern`), matches marked."""
    spans = _spans(words if isinstance(words, re.Pattern) else _pattern(words), fold(text))
    begin = 0
    if spans:
        reach = width * 2 // 3
        best = max(spans, key=lambda s: sum(1 for t in spans if s[0] <= t[0] and t[1] <= s[0] + reach))
        begin = max(0, best[0] - width // 3)
    end = min(len(text), begin + width)
    if begin > 0:  # start and end at a space, if there is one near
        space = text.rfind(" ", max(0, begin - 15), begin)
        begin = space + 1 if space >= 0 else begin
    if end < len(text):
        space = text.find(" ", end, end + 15)
        end = space if space >= 0 else end
    return ("…" if begin > 0 else "") + _marked(text, spans, begin, end) + ("…" if end < len(text) else "")


def name_needles(query: str) -> list[str]:
    """What a name must hold, each anywhere in its folded form, to match `query`."""
    return [fold(unicodedata.normalize("NFKC", word)) for word in query.split()]


def name_hits(query: str, names: Iterable[tuple[Searchable, str]]) -> list[SearchHit]:
    """Of (conversation, its folded name), those whose name holds every word of `query` anywhere
    ("0042" finds "Trip 0042"), most recently updated first."""
    needles = name_needles(query)
    if not needles:
        return []
    found = [(c, folded) for c, folded in names if all(needle in folded for needle in needles)]
    found.sort(key=lambda pair: pair[0].updated_at, reverse=True)
    pattern = re.compile("|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True)))
    return [
        SearchHit(
            c.id, c.name, None, "name", _marked(c.name, _spans(pattern, folded), 0, len(c.name)), rank, 0, c.archived
        )
        for rank, (c, folded) in enumerate(found, 1)
    ]


def _spans(pattern: re.Pattern[str], folded: str, most: int = 200) -> list[tuple[int, int]]:
    return [m.span() for m, _ in zip(pattern.finditer(folded), range(most), strict=False) if m.end() > m.start()]


def fingerprint(conversation: Searchable) -> str:
    """Changes whenever what the index holds of `conversation` (its messages) changes."""
    digest = hashlib.blake2b(digest_size=16)
    for message in conversation.messages:
        digest.update(f"\0{message.id}\0{len(message.content)}\0".encode(errors="replace"))
        digest.update(message.content.encode(errors="replace"))
    return digest.hexdigest()


def index_path(conversations_file: str | Path) -> Path:
    """Where the index of a conversations file lives: beside it."""
    return Path(f"{conversations_file}.search.db")


# --- the index ----------------------------------------------------------------------------


class SearchIndex:
    """The index of one conversations file (`path` None: in memory). Safe to share between threads;
    processes sharing the file take turns through SQLite's lock."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory_only = path is None  # also after a file that could not be used
        self.indexed = 0  # conversations (re)indexed so far: tests and the bench read it
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file opened
        self._token: object = None  # the store's token when the index last matched it
        # id(conversation) -> (a weak reference to it, its fingerprint), for the conversations last indexed
        self._known: dict[int, tuple[weakref.ref[Searchable], str]] = {}
        self._objects: list[weakref.ref[Searchable]] = []  # the same, in their order
        self._folded: dict[str, str] = {}  # their names -> folded
        self._rows: tuple[int, dict[str, tuple[int, str]]] | None = None  # (data_version, what is indexed)

    def search(
        self, query: str, token: object, conversations: Mapping[str, Searchable], limit: int = 20, names: bool = True
    ) -> list[SearchHit]:
        """Conversations matching every word of `query`, one hit each, best first: those whose name
        matches (if `names`), then those whose messages do. `token` changes when `conversations` do."""
        words = query_words(query)
        if not words or limit <= 0:
            return []
        with self._lock:
            hits, rows = self._retrying(lambda: self._search(query, words, token, conversations, limit, names))
        pattern = _pattern(words)
        for conversation_id, message_id, matches in rows:
            conversation = conversations.get(conversation_id)
            message = next((m for m in conversation.messages if m.id == message_id), None) if conversation else None
            if conversation is None or message is None:
                continue  # indexed by another process from a newer file than ours: the next search has it
            text = snippet(message.content, pattern)
            hits.append(
                SearchHit(
                    conversation.id,
                    conversation.name,
                    message.id,
                    message.role,
                    text,
                    len(hits) + 1,
                    matches,
                    conversation.archived,
                )
            )
        return hits

    def refresh(self, token: object, conversations: Mapping[str, Searchable]) -> int:
        """Bring the index up to date with `conversations`; how many conversations were indexed again."""
        with self._lock:
            before = self.indexed
            self._retrying(lambda: self._sync(token, conversations))
            return self.indexed - before

    @property
    def in_memory(self) -> bool:
        """True when the index lives in memory only: no file was given, or it could not be used."""
        return self._memory_only

    def size(self) -> int:
        """Bytes on disk, with SQLite's journal files."""
        return sum(p.stat().st_size for p in self._files() if p.exists())

    def close(self) -> None:
        with self._lock:
            self._discard(delete=False)

    # --- inside the lock ---

    def _retrying(self, action: Callable[[], T]) -> T:
        """`action`, after building the index again if its file is damaged, or in memory if the file
        cannot be used; SearchUnavailable if another process holds it too long, or for any other error."""
        for attempt in range(3):
            try:
                return action()
            except sqlite3.DatabaseError as error:
                code = getattr(error, "sqlite_errorcode", None)
                damaged = code is None or code & 0xFF in _DAMAGED or "no such" in str(error)
                unusable = code is not None and code & 0xFF in _UNUSABLE
                if attempt == 2 or not (damaged or unusable):
                    raise SearchUnavailable(self.path, error) from error
                self._discard(delete=damaged and attempt == 0)  # first: start afresh
                self._memory_only = unusable or attempt == 1  # then: keep the index in memory
        raise AssertionError("unreachable")

    def _search(
        self,
        query: str,
        words: list[list[str]],
        token: object,
        conversations: Mapping[str, Searchable],
        limit: int,
        names: bool,
    ) -> tuple[list[SearchHit], list[tuple[str, str, int]]]:
        """The name hits, and (conversation id, message id, matching messages) of the best messages."""
        db = self._sync(token, conversations)
        folded = self._folded
        named = ((c, folded.get(c.name) or fold(c.name)) for c in conversations.values())
        hits = name_hits(query, named)[:limit] if names else []
        return hits, self._query(db, words, limit - len(hits))

    def _query(self, db: sqlite3.Connection, words: list[list[str]], limit: int) -> list[tuple[str, str, int]]:
        """(conversation id, message id, matching messages) of the best `limit` conversations."""
        if limit <= 0:
            return []
        expression = match_expression(words)
        count = db.execute(  # up to BROAD + 1: counting 100,000 matches would take as long as ranking them
            "SELECT count(*) FROM (SELECT 1 FROM messages WHERE messages MATCH ? LIMIT ?)", (expression, BROAD + 1)
        ).fetchone()[0]
        best: list[tuple[int, int, int]] = []  # (conversation number, message place, matches)
        if 0 < count <= BROAD:
            # bm25 for every match, one row a conversation: SQLite takes the bare `rowid` from its best row
            best = db.execute(
                "SELECT rowid / ?, rowid % ?, n FROM (SELECT rowid, min(rank) AS r, count(*) AS n"
                " FROM messages WHERE messages MATCH ? GROUP BY rowid / ? ORDER BY r LIMIT ?)",
                (SLOTS, SLOTS, expression, SLOTS, limit),
            ).fetchall()
        elif count:  # ranking 100,000 matches of a word like "the" takes longer than the result is worth
            for (rowid,) in db.execute(
                "SELECT rowid FROM messages WHERE messages MATCH ? ORDER BY rowid DESC", (expression,)
            ):
                number, place = divmod(rowid, SLOTS)
                if best and best[-1][0] == number:
                    best[-1] = (number, place, best[-1][2] + 1)  # its first matching message
                elif len(best) == limit:
                    break
                else:
                    best.append((number, place, 1))
        found = []
        for number, place, matches in best:
            row = db.execute("SELECT id, ids FROM conversations WHERE number = ?", (number,)).fetchone()
            ids = json.loads(row[1]) if row else []
            if place < len(ids):
                found.append((str(row[0]), ids[place], int(matches)))
        return found

    def _sync(self, token: object, conversations: Mapping[str, Searchable]) -> sqlite3.Connection:
        """The open index, made to match `conversations` first if they changed."""
        db = self._open()
        if token == self._token and self._unchanged(conversations):
            return db
        # Conversations are frozen: the very object fingerprinted last time has the same text. A weak
        # reference tells it is the very object (an id() alone may be reused) without keeping it alive.
        known, fresh, fingerprints = self._known, {}, {}
        for c in conversations.values():
            entry = known.get(id(c))
            if entry is None or entry[0]() is not c:
                entry = (weakref.ref(c), fingerprint(c))
            fresh[id(c)], fingerprints[c.id] = entry, entry[1]
        with db:  # one transaction: another process sees the index before or after, never half of it
            db.execute("BEGIN IMMEDIATE")  # what is indexed is read inside it, after any other writer
            indexed = self._indexed(db)
            changed = [i for i, f in fingerprints.items() if indexed.get(i, (0, ""))[1] != f]
            for conversation_id in (indexed.keys() - fingerprints.keys()) | (indexed.keys() & set(changed)):
                self._remove(db, indexed.pop(conversation_id)[0])
            # oldest first: numbers grow with time, so the newest conversations have the highest
            changed.sort(key=lambda i: conversations[i].updated_at)
            for conversation_id in changed:
                number = self._add(db, conversations[conversation_id], fingerprints[conversation_id])
                indexed[conversation_id] = (number, fingerprints[conversation_id])
            if len(changed) > 100:  # a build: merge the index's segments into one (faster queries, smaller file)
                db.execute("INSERT INTO messages (messages) VALUES ('optimize')")
        if len(changed) > 100 and not self._memory_only:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # and fold the journal into the file
        self.indexed += len(changed)
        self._known, self._token = fresh, token
        self._objects = [weakref.ref(c) for c in conversations.values()]
        folded = self._folded if len(self._folded) < 2 * len(conversations) + 100 else {}
        for c in conversations.values():
            if c.name not in folded:
                folded[c.name] = fold(c.name)
        self._folded = folded
        return db

    def _indexed(self, db: sqlite3.Connection) -> dict[str, tuple[int, str]]:
        """conversation id -> (its number, its fingerprint) in the index, read again only if another
        connection wrote since we last did (SQLite's data_version tells)."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if self._rows is None or version != self._rows[0]:
            rows = db.execute("SELECT id, number, fingerprint FROM conversations")
            self._rows = (version, {str(i): (int(n), str(f)) for i, n, f in rows})
        return self._rows[1]  # changed in place by the caller, whose writes do not change data_version

    def _add(self, db: sqlite3.Connection, conversation: Searchable, fingerprint: str) -> int:
        texts = [index_text(m.content) for m in conversation.messages]
        number = db.execute(
            "INSERT INTO conversations (id, fingerprint, ids, texts) VALUES (?, ?, ?, ?)",
            (
                conversation.id,
                fingerprint,
                json.dumps([m.id for m in conversation.messages]),
                zlib.compress("\0".join(texts).encode(errors="replace"), 1),
            ),
        ).lastrowid
        assert number is not None
        db.executemany(
            "INSERT INTO messages (rowid, body) VALUES (?, ?)",
            ((number * SLOTS + place, text) for place, text in enumerate(texts)),
        )
        return number

    def _remove(self, db: sqlite3.Connection, number: int) -> None:
        """Take a conversation's words out: a contentless table needs the very text it was given."""
        (blob,) = db.execute("SELECT texts FROM conversations WHERE number = ?", (number,)).fetchone()
        texts = zlib.decompress(blob).decode().split("\0")
        db.executemany(
            "INSERT INTO messages (messages, rowid, body) VALUES ('delete', ?, ?)",
            ((number * SLOTS + place, text) for place, text in enumerate(texts)),
        )
        db.execute("DELETE FROM conversations WHERE number = ?", (number,))

    def _unchanged(self, conversations: Mapping[str, Searchable]) -> bool:
        """Are these the very objects last indexed, in the same order? Cheap, and the token alone is
        not trusted: a token that is an object's id() can come back for another object."""
        return len(self._objects) == len(conversations) and all(
            ref() is c for ref, c in zip(self._objects, conversations.values(), strict=True)
        )

    def _open(self) -> sqlite3.Connection:
        if self._db is not None and not self._replaced():
            return self._db
        self._discard(delete=False)
        try:
            self._db = self._connect(None if self._memory_only else self.path)
        except OSError:  # its folder cannot be made
            self._memory_only = True
            self._db = self._connect(None)
        return self._db

    def _connect(self, path: Path | None) -> sqlite3.Connection:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path or ":memory:", timeout=30, check_same_thread=False, isolation_level=None)
        try:
            if path is not None:
                db.execute("PRAGMA journal_mode = WAL")  # readers in other processes go on while one writes
                db.execute("PRAGMA synchronous = NORMAL")  # derived data: a write lost in a crash is redone
                stat = path.stat()
                self._identity = (stat.st_dev, stat.st_ino)
            with db:
                db.execute("BEGIN IMMEDIATE")
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
                    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
                    db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
                    db.execute(
                        "CREATE TABLE conversations (number INTEGER PRIMARY KEY, id TEXT UNIQUE, fingerprint TEXT,"
                        " ids TEXT, texts BLOB)"
                    )
                    db.execute(f"CREATE VIRTUAL TABLE messages USING fts5(body, content='', tokenize=\"{_TOKENIZER}\")")
                found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is None or found[0] != SCHEMA:
                raise sqlite3.DatabaseError(f"a search index of schema {found}, not {SCHEMA}")
        except BaseException:
            db.close()
            raise
        return db

    def _replaced(self) -> bool:
        """Was the file deleted or replaced since we opened it?"""
        if self._memory_only or self.path is None:
            return False
        try:
            stat = self.path.stat()
        except OSError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def _discard(self, delete: bool) -> None:
        """Close the index (and delete its files): the next search opens (builds) it again."""
        if self._db is not None:
            self._db.close()
        self._db, self._token, self._known, self._objects, self._rows = None, None, {}, [], None
        if delete:
            for file in self._files():
                try:
                    file.unlink(missing_ok=True)
                except OSError:
                    break  # cannot be deleted: opening it fails again and the index lives in memory

    def _files(self) -> list[Path]:
        if self.path is None:
            return []
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
