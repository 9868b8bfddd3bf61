"""The repetition guard: notice when a streamed answer has started repeating itself.

Small models loop ("I'm not sure of your name either." until the token cap). The guard looks
at the answer as it grows and says where the loop began, so the turn can stop the stream and
keep one copy of the repeated text. It knows no language: it compares characters and sentences.
"""

from __future__ import annotations

import re
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


def loop_start(text: str) -> int | None:
    """Where `text` should be cut because it repeats itself, or None when it does not.

    The cut keeps one copy of what was repeated: everything before the second copy.
    """
    return _periodic_tail(text) if (cut := _repeated_sentence(text)) is None else cut


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
