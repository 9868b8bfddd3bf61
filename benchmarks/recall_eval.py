"""How well a model remembers what the user said earlier in the conversation.

Runs the scripted conversations of benchmarks/recall_cases.py through the app's real
ChatController.stream_reply (so memory is the app's: rebuild_memory over the history) and
prints one markdown row: recall, answers cut by the token cap, answers stopped as repeating,
answers that loop by this script's own check, median answer length and time.

    .venv/bin/python benchmarks/recall_eval.py                       # the embedded SmolLM2
    .venv/bin/python benchmarks/recall_eval.py --model-path path/to/model.gguf
    .venv/bin/python benchmarks/recall_eval.py --api-base http://host:8000/v1 --model NAME [--api-key KEY]
    .venv/bin/python benchmarks/recall_eval.py --ollama llama3.2:1b
    .venv/bin/python benchmarks/recall_eval.py --temperature 0.3 --repeat-penalty 1.15 --limit 10 --json out.json

--history live (default): the turns between the fact and the question are answered by the
model itself, as a user would see them, so its own answers (loops included) fill the memory.
--history scripted: those turns get short written answers and only the question is answered
by the model: recall alone, the same history for every model, and much faster.
--control: the fact is never said; what the model then "recalls" is a guess (should be ~0).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import re
import statistics
import sys
import time
import unicodedata
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from llama_index.llms.openai_like import OpenAILike

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# LlamaIndex's notices about OpenAIAgent's successor, once per turn, would bury the table.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", module="pydantic")

from benchmarks.recall_cases import ACKNOWLEDGEMENTS, CASES, FILLERS, Case  # noqa: E402
from controller.agent import count_tokens  # noqa: E402
from controller.chat import ChatController  # noqa: E402
from model.message import Message  # noqa: E402
from settings import Settings, from_environ  # noqa: E402
from utils.local_server import LocalModelServer  # noqa: E402
from utils.providers import build_llm, describe, served_models  # noqa: E402

# ---------------------------------------------------------------- scoring (pure functions)

# Letters NFKD does not split into a base letter and an accent.
TRANSLITERATE = str.maketrans({"ø": "o", "æ": "ae", "ß": "ss", "ł": "l", "đ": "d", "œ": "oe", "ı": "i", "þ": "th"})
UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip


def _kind(word: str) -> str | None:
    value = UNITS.get(word, ORDINALS.get(word, TENS.get(word)))
    if value is None:
        return word if word in ("hundred", "thousand", "and") else None
    return "unit" if value < 10 else "teen" if value < 20 else "tens" if value % 10 == 0 else "unit"


# Which kind of word may follow which inside one number ("forty two", "one hundred and twelve").
FOLLOWS = {
    "unit": {None, "tens", "hundred", "thousand", "and"},
    "teen": {None, "hundred", "thousand", "and"},
    "tens": {None, "hundred", "thousand", "and"},
    "hundred": {"unit", "teen"},
    "thousand": {"unit", "teen", "tens", "hundred"},
    "and": {"hundred", "thousand"},
}


def _number_words_to_digits(words: list[str]) -> list[str]:
    """'forty two' → '42', 'one hundred and twelve' → '112', 'twenty third' → '23'."""
    out: list[str] = []
    i = 0
    while i < len(words):
        total, current, last, j = 0, 0, None, i
        while j < len(words) and (kind := _kind(words[j])) is not None and last in FOLLOWS[kind]:
            w = words[j]
            if kind == "and" and (j + 1 == len(words) or _kind(words[j + 1]) not in ("unit", "teen", "tens")):
                break
            if kind == "hundred":
                current *= 100
            elif kind == "thousand":
                total, current = current * 1000, 0
            elif kind != "and":
                current += UNITS.get(w, ORDINALS.get(w, TENS.get(w, 0)))
            last, j = kind, j + 1
            if w in ORDINALS:  # an ordinal ends a number
                break
        if last in (None, "and"):
            out.append(words[i])
            i += 1
        else:
            out.append(str(total + current))
            i = j
    return out


def normalise(text: str) -> str:
    """Lower case, no accents, numbers as digits, words separated by single spaces."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(TRANSLITERATE))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"(?<=\d)[,\u202f\u00a0](?=\d{3}\b)", "", text)  # 4,187 → 4187
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", r"\1", text)  # 14th → 14
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(_number_words_to_digits(words))


def recalls(answer: str, expected: tuple[str, ...]) -> bool:
    """The answer names the fact: one of its written forms, as whole words."""
    said = f" {normalise(answer)} "
    return any(f" {normalise(form)} " in said for form in expected)


def loops(answer: str) -> bool:
    """The same sentence or line 3+ times in a row, or a 6-word sequence 4+ times anywhere."""
    sentences = [normalise(s) for s in re.split(r"(?<=[.!?])\s+|\n+", answer)]
    sentences = [s for s in sentences if s]
    run = 1
    for before, now in zip(sentences, sentences[1:], strict=False):
        run = run + 1 if now == before else 1
        if run >= 3:
            return True
    words = normalise(answer).split()
    grams = Counter(tuple(words[i : i + 6]) for i in range(len(words) - 5))
    return bool(grams) and max(grams.values()) >= 4


def leaks(case: Case) -> list[str]:
    """The texts (other than the fact itself) that already contain the answer: must be none."""
    shown = [case.question, *(q for q, _ in FILLERS), *(a for _, a in FILLERS), *ACKNOWLEDGEMENTS]
    return [text for text in shown if recalls(text, case.expected)]


# ---------------------------------------------------------------- running conversations


@dataclass
class Turn:
    user: str
    answer: str
    seconds: float
    tokens: int
    status: str  # complete | length | repeating | stopped
    status_from: str  # "controller", or "counted" when the controller does not say
    loop: bool
    generated: bool = True


@dataclass
class Result:
    id: str
    kind: str
    distance: int
    expected: tuple[str, ...]
    recalled: bool
    turns: list[Turn] = field(default_factory=list)


class Harness:
    """The model under test behind the app's own ChatController."""

    def __init__(self, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.local: LocalModelServer | None = None
        if settings.llm_provider == "local":
            self.local = LocalModelServer(
                settings.local_model_path,
                settings.local_context_window,
                settings.local_parallel,
                settings.local_threads,
            )
            self.local.start()
        info = describe(settings, self.local)
        self.model = info.model

        # The lead's wiring gives build_llm a `watch` (how the stream ended) and the controller
        # a `reply()` whose Turn has a status; before it, answers end without saying how.
        watches = "watch" in inspect.signature(build_llm).parameters

        def llm_factory(watch: Any = None) -> OpenAILike:
            llm = build_llm(settings, self.local, watch) if watches else build_llm(settings, self.local)
            # the same seed for every request, so a run can be repeated (servers that ignore it still work)
            llm.additional_kwargs = {**llm.additional_kwargs, "seed": seed}
            return llm

        self.llm_factory = llm_factory
        # Built the way view/resources.chat_controller builds it, without Streamlit.
        self.controller = ChatController(
            llm_factory if watches else lambda: llm_factory(),  # type: ignore[arg-type]
            provider=info.provider,
            model=info.model,
            system_prompt=settings.system_prompt,
            served_models=lambda: served_models(settings),
        )
        self.cap = llm_factory().max_tokens or 0

    def effective(self) -> dict[str, object]:
        """What a chat request really carries (so a setting not wired in shows as absent)."""
        llm = self.llm_factory()
        extra = dict(llm.additional_kwargs)
        extra.pop("seed", None)
        return {"temperature": llm.temperature, "max_tokens": llm.max_tokens, **extra.pop("extra_body", {}), **extra}

    def count(self, text: str) -> int:
        """The answer's tokens: by the embedded server's own tokenizer, else tiktoken (approximate)."""
        if self.local is None:
            return count_tokens(text)
        response = httpx.post(
            self.local.base_url.removesuffix("/v1") + "/tokenize",
            json={"content": text},
            headers={"Authorization": f"Bearer {self.local.api_key}"},
            timeout=30,
        )
        response.raise_for_status()
        return len(response.json()["tokens"])

    def turn(self, history: list[Message], text: str) -> Turn:
        began = time.monotonic()
        if hasattr(self.controller, "reply"):  # the controller says how the answer ended
            reply = self.controller.reply(history, text)
            for _ in reply:
                pass
            answer, status, status_from = reply.text, reply.status, "controller"
        else:
            answer, status, status_from = "".join(self.controller.stream_reply(history, text)), None, "counted"
        seconds = time.monotonic() - began
        tokens = self.count(answer)
        if status is None:
            # re-tokenised text can differ from the streamed tokens by one or two
            status = "length" if tokens >= self.cap - 2 else "complete"
        return Turn(text, answer, seconds, tokens, status, status_from, loops(answer))


def run_case(harness: Harness, case: Case, live: bool, control: bool, rng: random.Random) -> Result:
    fillers = rng.sample(FILLERS, case.distance - 1 + (1 if control else 0))
    script: list[tuple[str, str]] = [] if control else [(case.fact, rng.choice(ACKNOWLEDGEMENTS))]
    script += fillers
    history: list[Message] = []
    turns: list[Turn] = []
    for user, written in script:
        if live:
            turn = harness.turn(history, user)
        else:
            turn = Turn(user, written, 0.0, 0, "complete", "scripted", False, generated=False)
        turns.append(turn)
        history += [Message("user", user), Message("assistant", turn.answer, status=turn.status)]  # type: ignore[arg-type]
    final = harness.turn(history, case.question)
    turns.append(final)
    return Result(case.id, case.kind, case.distance, case.expected, recalls(final.answer, case.expected), turns)


# ---------------------------------------------------------------- the report

HEADER = (
    "| run | recall | answers | cut at the cap | stopped as repeating | loop (eval's check) | loop to the cap "
    "| median words | median s/answer |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(label: str, results: list[Result], status_known: bool) -> str:
    answers = [t for r in results for t in r.turns if t.generated]
    hit = sum(r.recalled for r in results)
    capped = sum(t.status == "length" for t in answers)
    repeating = str(sum(t.status == "repeating" for t in answers)) if status_known else "—"
    looping = sum(t.loop for t in answers)
    runaway = sum(t.loop and t.status == "length" for t in answers)
    words = statistics.median(len(t.answer.split()) for t in answers)
    seconds = statistics.median(t.seconds for t in answers)
    return (
        f"| {label} | {100 * hit / len(results):.0f}% ({hit}/{len(results)}) | {len(answers)} | {capped} "
        f"| {repeating} | {looping} | {runaway} | {words:.0f} | {seconds:.2f} |"
    )


# ---------------------------------------------------------------- command line

SAMPLING_FLAGS = {
    "temperature": "LOCAL_TEMPERATURE",
    "top_p": "LOCAL_TOP_P",
    "min_p": "LOCAL_MIN_P",
    "repeat_penalty": "LOCAL_REPEAT_PENALTY",
    "max_tokens": "LOCAL_MAX_TOKENS",
}


def environment(args: argparse.Namespace) -> dict[str, str]:
    """The app's settings for this run: the real environment, overlaid by the flags."""
    env = dict(os.environ)
    for flag, name in SAMPLING_FLAGS.items():
        if getattr(args, flag) is not None:
            env[name] = str(getattr(args, flag))
    if args.max_tokens is not None:
        env["MAX_TOKENS"] = str(args.max_tokens)  # the cap for remote models too
    if args.system_prompt is not None:
        env["SYSTEM_PROMPT"] = args.system_prompt
    if args.ollama:
        host = from_environ(env).ollama_host
        args.api_base, args.model = f"{host}/v1", args.ollama
    if args.api_base:
        env.update(LLM_PROVIDER="openai", OPENAI_API_BASE=args.api_base, OPENAI_MODEL=args.model or "")
        if args.api_key:
            env["OPENAI_API_KEY"] = args.api_key
    else:
        env["LLM_PROVIDER"] = "local"
        if args.model_path:
            env["LOCAL_MODEL_PATH"] = args.model_path
    return env


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_argument_group("the model (default: the embedded SmolLM2)")
    which.add_argument("--model-path", help="a .gguf file for the embedded llama.cpp server")
    which.add_argument("--api-base", help="an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    which.add_argument("--model", help="the model name the endpoint serves")
    which.add_argument("--api-key", help="the endpoint's key, if it wants one")
    which.add_argument("--ollama", metavar="MODEL", help="a model of the Ollama server at OLLAMA_HOST")
    sampling = p.add_argument_group("sampling (the LOCAL_* settings; --max-tokens also sets MAX_TOKENS)")
    sampling.add_argument("--temperature", type=float)
    sampling.add_argument("--top-p", type=float)
    sampling.add_argument("--min-p", type=float)
    sampling.add_argument("--repeat-penalty", type=float)
    sampling.add_argument("--max-tokens", type=int)
    sampling.add_argument("--system-prompt", help="instead of SYSTEM_PROMPT")
    run = p.add_argument_group("the run")
    run.add_argument("--history", choices=("live", "scripted"), default="live")
    run.add_argument("--control", action="store_true", help="never state the fact: measures lucky guesses")
    run.add_argument("--limit", type=int, help="run only the first N conversations")
    run.add_argument("--seed", type=int, default=0, help="picks the filler turns; sent to the model too")
    run.add_argument("--label", help="the table row's name (default: the settings used)")
    run.add_argument("--json", type=Path, help="save every turn's answer here")
    args = p.parse_args(argv)
    if args.api_base and not args.model:
        p.error("--api-base needs --model")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    cases = CASES[: args.limit] if args.limit else CASES
    for case in cases:
        if leaked := leaks(case):
            raise SystemExit(f"{case.id}: the answer is already in {leaked[0]!r}; fix benchmarks/recall_cases.py")
    settings = from_environ(environment(args))
    harness = Harness(settings, args.seed)
    effective = harness.effective()
    print(f"model: {harness.model} ({settings.llm_provider})")
    print(f"system prompt: {settings.system_prompt!r}")
    if settings.llm_provider == "local":
        print(
            f"settings: LOCAL_TEMPERATURE={settings.local_temperature} LOCAL_TOP_P={settings.local_top_p} "
            f"LOCAL_MIN_P={settings.local_min_p} LOCAL_REPEAT_PENALTY={settings.local_repeat_penalty} "
            f"LOCAL_MAX_TOKENS={settings.local_max_tokens} MAX_TOKENS={settings.max_tokens}"
        )
    print(f"each request carries: {effective}")
    print(f"history: {args.history}{', control (fact never said)' if args.control else ''}; seed {args.seed}")
    rng = random.Random(args.seed)
    results: list[Result] = []
    began = time.monotonic()
    for n, case in enumerate(cases, 1):
        result = run_case(harness, case, args.history == "live", args.control, rng)
        results.append(result)
        final = result.turns[-1]
        mark = "✓" if result.recalled else "✗"
        print(f"  {n:2}/{len(cases)} {mark} {case.id:<22} d={case.distance:<2} {final.answer[:70]!r}", flush=True)
    elapsed = time.monotonic() - began
    status_known = any(t.status_from == "controller" for r in results for t in r.turns)
    label = args.label or ", ".join(f"{k}={v}" for k, v in effective.items())
    print(f"\n{len(cases)} conversations in {elapsed / 60:.1f} min\n")
    print(HEADER)
    print(row(label, results, status_known))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": harness.model,
                    "system_prompt": settings.system_prompt,
                    "request": effective,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "minutes": round(elapsed / 60, 2),
                    "results": [asdict(r) for r in results],
                },
                indent=1,
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    main()
