"""The repetition guard: notice when a streamed answer has started repeating itself.

Small models loop ("I'm not sure of your name either." until the token cap). The guard looks
at the answer as it grows and says where the loop began, so the turn can stop the stream and
keep one copy of the repeated text. It knows no language: it compares characters and sentences.
"""

from __future__ import annotations

import re
from bisect import bisect
from collections import Counter

# A block repeated back to back counts as a loop once it has come 3 times and the repeats
# cover this many characters (so "ha ha ha" or "1, 2, 3" never trip it).
MIN_LOOP_CHARS = 60
MIN_REPEATS = 3
MAX_PERIOD = 400  # the longest block looked for, in characters
# The same sentence (of at least MIN_SENTENCE_WORDS words) this many times anywhere in an answer.
MAX_SAME_SENTENCE = 4
MIN_SENTENCE_WORDS = 4

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")


# The same run of N_GRAM words (outside code blocks) this many times: a loop that varies a little
# between its copies ("So let me tell you a little secret…" over and over, with other words between).
N_GRAM = 6
MAX_SAME_N_GRAM = 4
N_GRAM_WINDOW = 600  # only the newest words are looked at: a loop is recent by nature

_WORD = re.compile(r"\w+")
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


def loop_start(text: str) -> int | None:
    """Where `text` should be cut because it repeats itself, or None when it does not.

    The cut keeps the text before the copy that made it a loop.
    """
    cuts = [cut for check in (_repeated_sentence, _repeated_n_gram, _periodic_tail) if (cut := check(text)) is not None]
    return min(cuts, default=None)


def _periodic_tail(text: str) -> int | None:
    """A block repeated back to back at the end of `text`: the index just after its first copy."""
    n = len(text)
    last = text[-1:] if n else ""
    for period in range(1, min(MAX_PERIOD, n // MIN_REPEATS) + 1):
        if text[n - 1 - period] != last:
            continue  # cheap test before comparing whole blocks
        needed = max(MIN_REPEATS, -(-MIN_LOOP_CHARS // period))  # ceil(MIN_LOOP_CHARS / period)
        if needed * period > n:
            continue
        tail = text[n - needed * period :]
        if tail == tail[:period] * needed:
            start = n - needed * period
            while start > 0 and text[start - 1] == text[start - 1 + period]:
                start -= 1  # walk back to where the repetition really began
            cut, limit = start + period, start + 2 * period
            while cut < limit and not text[cut].isspace():
                cut += 1  # end the kept copy at a space, not inside a word ("either|.")
            return cut
    return None


def _repeated_sentence(text: str) -> int | None:
    """The same sentence too often (not always back to back): the index where its last copy starts."""
    spans = []
    begin = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((begin, match.start()))
        begin = match.end()
    counts: Counter[str] = Counter()
    for begin, end in spans:
        sentence = " ".join(text[begin:end].split()).casefold()
        if len(sentence.split()) < MIN_SENTENCE_WORDS:
            continue
        counts[sentence] += 1
        if counts[sentence] >= MAX_SAME_SENTENCE:
            return begin
    return None


def _repeated_n_gram(text: str) -> int | None:
    """The same N_GRAM words too often: the start of the sentence holding the copy too many.
    Words inside fenced code blocks (after an odd number of fences) are not counted: code repeats."""
    fences = [m.start() for m in _FENCE.finditer(text)]
    words = [m for m in _WORD.finditer(text) if bisect(fences, m.start()) % 2 == 0][-N_GRAM_WINDOW:]
    seen: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(words) - N_GRAM + 1):
        gram = tuple(w.group().casefold() for w in words[i : i + N_GRAM])
        starts = seen.setdefault(gram, [])
        if starts and words[i].start() < _end_of(words, starts[-1]):
            continue  # overlapping itself ("ha ha ha ha ha ha ha"): the periodic check's case
        starts.append(i)
        if len(starts) >= MAX_SAME_N_GRAM:
            at = words[i].start()
            boundary = max(text.rfind(mark, 0, at) for mark in (". ", "! ", "? ", "\n"))
            previous = words[starts[-2]].start()
            return boundary + 1 if boundary > previous else at
    return None


def _end_of(words: list[re.Match[str]], first: int) -> int:
    return words[first + N_GRAM - 1].end()
