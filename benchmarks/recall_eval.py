"""How well a model remembers what the user said earlier in the conversation, and whether it loops.

Runs the conversations of benchmarks/recall_cases.py through the app's own chat controller
(controller.runtime.Runtime.chat(), ChatController.reply(): the app's memory, sampling,
repetition guard and token cap) and prints a markdown row: recall, answers cut by the token
cap, answers stopped by the repetition guard, answers that loop by this script's own check,
median answer length and seconds.

    .venv/bin/python benchmarks/recall_eval.py                       # the embedded SmolLM2
    .venv/bin/python benchmarks/recall_eval.py --model-path path/to/model.gguf
    .venv/bin/python benchmarks/recall_eval.py --api-base http://host:8000/v1 --model NAME [--api-key KEY]
    .venv/bin/python benchmarks/recall_eval.py --ollama llama3.2:1b
    .venv/bin/python benchmarks/recall_eval.py --temperature 0.3 --repeat-penalty 1.15 --limit 10 --json out.json
    .venv/bin/python benchmarks/recall_eval.py --report out.json other.json   # the table of saved runs

--history live (default): the turns between the fact and the question are answered by the
model itself, as a user would see them, so its own answers (loops included) fill the memory.
--history scripted: those turns get short written answers and only the question is answered
by the model: recall alone, the same history for every model, and much faster.
--control: the fact is never said; what the model then "recalls" is a guess (should be ~0).

The model is the one the flags name (the bundled SmolLM2 without any), never the one chosen on
the Models page: the run gets an empty data folder. Other settings come from the environment
and .env as in the app (LOCAL_THREADS, LOCAL_PARALLEL, LOCAL_CONTEXT_WINDOW…).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.quiet import silence_known_warnings  # noqa: E402

silence_known_warnings()  # LlamaIndex's deprecation notices, three per turn, would bury the table

from benchmarks.recall_cases import ACKNOWLEDGEMENTS, CASES, FILLERS, Case  # noqa: E402
from controller.runtime import Runtime  # noqa: E402
from model.message import Message  # noqa: E402
from settings import Settings, from_environ  # noqa: E402
from utils import ollama  # noqa: E402

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
FOLLOWS: dict[str, set[str | None]] = {
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
    """The same sentence or line 3+ times in a row, or a 6-word sequence 4+ times anywhere.

    In the 6-word sequences every number counts as the same word, so a counting loop
    ("23:15 GMT on Monday, 24:15 GMT on Tuesday, …") is caught too.
    """
    sentences = [normalise(s) for s in re.split(r"(?<=[.!?])\s+|\n+", answer)]
    sentences = [s for s in sentences if s]
    run = 1
    for before, now in zip(sentences, sentences[1:], strict=False):
        run = run + 1 if now == before else 1
        if run >= 3:
            return True
    words = ["#" if w.isdigit() else w for w in normalise(answer).split()]
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
    status: str  # how the controller says the answer ended: complete | length | repeating | stopped
    loop: bool  # by this script's own check, `loops()`
    generated: bool = True  # False for the written answers of --history scripted


@dataclass
class Result:
    id: str
    kind: str
    distance: int
    expected: tuple[str, ...]
    recalled: bool
    turns: list[Turn] = field(default_factory=list)


class Harness:
    """The model under test behind the app's own chat controller."""

    def __init__(self, settings: Settings, seed: int, extra_body: dict[str, Any] | None = None) -> None:
        runtime = Runtime(settings)
        self.settings = runtime.settings
        self.model = runtime.provider().model
        if runtime.local is not None:
            runtime.local.start()  # load the model before the clock starts
        self.controller = runtime.chat()
        build = self.controller.build_llm

        def seeded(watch: Any) -> Any:
            llm = build(watch)
            kwargs = {**llm.additional_kwargs, "seed": seed}
            if extra_body:
                kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **extra_body}
            llm.additional_kwargs = kwargs
            return llm

        # the app's own LLM factory plus a fixed seed, so a run can be repeated answer for answer
        # (servers that ignore the seed still work)
        self.controller.build_llm = seeded  # type: ignore[method-assign]

    def request(self) -> dict[str, Any]:
        """The sampling a chat request really carries (a setting not wired in shows as absent)."""
        llm = self.controller.build_llm(None)  # type: ignore[arg-type]
        extra = {k: v for k, v in llm.additional_kwargs.items() if k != "seed"}
        return {"temperature": llm.temperature, "max_tokens": llm.max_tokens, **extra.pop("extra_body", {}), **extra}

    def turn(self, history: list[Message], text: str) -> Turn:
        began = time.monotonic()
        reply = self.controller.reply(history, text)
        for _ in reply:
            pass
        return Turn(text, reply.text, time.monotonic() - began, reply.status or "complete", loops(reply.text))


def run_case(harness: Harness, case: Case, live: bool, control: bool, rng: random.Random) -> Result:
    fillers = rng.sample(FILLERS, case.distance - 1 + (1 if control else 0))
    script: list[tuple[str, str]] = [] if control else [(case.fact, rng.choice(ACKNOWLEDGEMENTS))]
    script += fillers
    history: list[Message] = []
    turns: list[Turn] = []
    for user, written in script:
        turn = harness.turn(history, user) if live else Turn(user, written, 0.0, "complete", False, generated=False)
        turns.append(turn)
        # kept as the app keeps it: an answer cut by the cap or the guard stays in the chat
        history += [Message("user", user), Message("assistant", turn.answer, status=turn.status)]  # type: ignore[arg-type]
    final = harness.turn(history, case.question)
    turns.append(final)
    return Result(case.id, case.kind, case.distance, case.expected, recalls(final.answer, case.expected), turns)


# ---------------------------------------------------------------- the report

HEADER = (
    "| run | recall | answers | cut at the cap | stopped as repeating | loop (eval's check) | loop to the cap "
    "| median words | median s/answer |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(label: str, results: list[Result], status_known: bool = True) -> str:
    """One table row. Every count is over all answers the model gave (every turn, when live)."""
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


def load(path: Path) -> tuple[str, list[Result], bool]:
    """A run saved by --json: its label, its conversations, and whether the controller gave statuses."""
    record = json.loads(path.read_text())
    results = []
    for r in record["results"]:
        turns = [
            Turn(t["user"], t["answer"], t["seconds"], t["status"], loops(t["answer"]), t.get("generated", True))
            for t in r["turns"]
        ]
        results.append(Result(r["id"], r["kind"], r["distance"], tuple(r["expected"]), r["recalled"], turns))
    # runs saved before the controller reported statuses counted tokens instead
    status_known = all(
        t.get("status_from", "controller") == "controller" for r in record["results"] for t in r["turns"]
    )
    label = record.get("label") or record.get("args", {}).get("label") or path.stem
    return label, results, status_known


def save(
    path: Path, label: str, harness: Harness, args: argparse.Namespace, results: list[Result], seconds: float
) -> None:
    record = {
        "label": label,
        "model": harness.model,
        "system_prompt": harness.settings.system_prompt,
        "request": harness.request(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "minutes": round(seconds / 60, 2),
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False))


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
        env["MAX_TOKENS"] = str(args.max_tokens)  # the cap of remote models
    if args.system_prompt is not None:
        env["SYSTEM_PROMPT"] = args.system_prompt
    # no saved choice from the Models page: the flags say which model answers
    env["DATA_DIR"] = tempfile.mkdtemp(prefix="recall-eval-")
    if args.ollama:
        base = ollama.api_base(from_environ(env).ollama_host)
        # as the app does: never send an OpenAI-compatible server's key to Ollama
        env.update(LLM_PROVIDER="openai", OPENAI_API_BASE=base, OPENAI_MODEL=args.ollama, OPENAI_API_KEY="")
    elif args.api_base:
        env.update(LLM_PROVIDER="openai", OPENAI_API_BASE=args.api_base, OPENAI_MODEL=args.model)
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
    sampling = p.add_argument_group(
        "sampling: the LOCAL_* settings of the embedded model (--max-tokens: MAX_TOKENS too)"
    )
    sampling.add_argument("--temperature", type=float)
    sampling.add_argument("--top-p", type=float)
    sampling.add_argument("--min-p", type=float)
    sampling.add_argument("--repeat-penalty", type=float)
    sampling.add_argument("--max-tokens", type=int)
    sampling.add_argument("--system-prompt", help="instead of SYSTEM_PROMPT")
    sampling.add_argument(
        "--extra-body",
        type=json.loads,
        metavar="JSON",
        help="to explore: server sampling fields the app has no setting for, e.g. '{\"dry_multiplier\": 0.8}'",
    )
    run = p.add_argument_group("the run")
    run.add_argument("--history", choices=("live", "scripted"), default="live")
    run.add_argument("--control", action="store_true", help="never state the fact: measures lucky guesses")
    run.add_argument("--limit", type=int, help="only the first N conversations")
    run.add_argument("--seed", type=int, default=0, help="picks the filler turns; sent to the model too")
    run.add_argument("--label", help="the table row's name (default: the sampling used)")
    run.add_argument("--json", type=Path, help="save every turn's answer here (after each conversation)")
    run.add_argument(
        "--report", nargs="+", metavar="JSON", help="print the table of saved runs (a,b: one row) and exit"
    )
    args = p.parse_args(argv)
    if args.api_base and not args.model:
        p.error("--api-base needs --model")
    return args


def report(runs: list[str], limit: int | None) -> None:
    """One row per saved run; runs joined by commas (other seeds of one setting) make one row."""
    print(HEADER)
    for run in runs:
        label, results, status_known = "", [], True
        for path in run.split(","):
            name, some, known = load(Path(path))
            label = label or name
            results += some[:limit] if limit else some
            status_known = status_known and known
        print(row(label, results, status_known))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.report:
        return report(args.report, args.limit)
    cases = CASES[: args.limit] if args.limit else CASES
    for case in cases:
        if leaked := leaks(case):
            raise SystemExit(f"{case.id}: the answer is already in {leaked[0]!r}; fix benchmarks/recall_cases.py")
    harness = Harness(from_environ(environment(args)), args.seed, args.extra_body)
    settings, request = harness.settings, harness.request()
    label = args.label or ", ".join(f"{k}={v}" for k, v in request.items())
    print(f"model: {harness.model} ({settings.llm_provider})")
    print(f"system prompt: {settings.system_prompt!r}")
    print(f"each request carries: {request}")
    print(f"history: {args.history}{', control (the fact is never said)' if args.control else ''}; seed {args.seed}")
    rng = random.Random(args.seed)
    results: list[Result] = []
    began = time.monotonic()
    for n, case in enumerate(cases, 1):
        result = run_case(harness, case, args.history == "live", args.control, rng)
        results.append(result)
        mark = "✓" if result.recalled else "✗"
        answer = result.turns[-1].answer
        print(f"  {n:2}/{len(cases)} {time.monotonic() - began:6.0f}s {mark} {case.id:<20} {answer[:70]!r}", flush=True)
        if args.json:  # after every conversation, so a run cut short still leaves its answers
            save(args.json, label, harness, args, results, time.monotonic() - began)
    print(f"\n{len(cases)} conversations in {(time.monotonic() - began) / 60:.1f} min\n")
    print(HEADER)
    print(row(label, results))


if __name__ == "__main__":
    main()
