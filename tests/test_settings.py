from __future__ import annotations

from pathlib import Path

import pytest

from settings import GROQ_DEFAULT_BASE, GROQ_DEFAULT_MODEL, SettingsError, from_environ


def test_no_key_means_embedded_model(tmp_path: Path) -> None:
    s = from_environ({}, dotenv_path=tmp_path / "none")
    assert s.llm_provider == "local"
    assert s.secrets == ()


def test_groq_key_from_dotenv_selects_groq_with_defaults(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GROQ_API_KEY=gsk_from_file\n")
    s = from_environ({}, dotenv_path=env)
    assert (s.llm_provider, s.groq_model, s.groq_api_base) == ("groq", GROQ_DEFAULT_MODEL, GROQ_DEFAULT_BASE)
    assert "gsk_from_file" not in repr(s)  # keys never appear in a repr or log line


def test_environment_wins_over_dotenv_and_provider_override(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GROQ_API_KEY=file\nGROQ_API_BASE=http://file/v1\n")
    s = from_environ({"GROQ_API_BASE": "http://127.0.0.1:9/v1/", "LLM_PROVIDER": "LOCAL"}, dotenv_path=env)
    assert s.groq_api_base == "http://127.0.0.1:9/v1"
    assert s.llm_provider == "local"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLM_PROVIDER": "claude"}, "LLM_PROVIDER must be one of"),
        ({"LOCAL_PARALLEL": "many"}, "LOCAL_PARALLEL must be a whole number"),
        ({"LOCAL_CONTEXT_WINDOW": "10"}, "at least 256"),
        ({"REQUEST_TIMEOUT": "soon"}, "REQUEST_TIMEOUT must be a number"),
    ],
)
def test_bad_values_fail_with_the_fix(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_environ(env, dotenv_path=tmp_path / "none")


def test_env_example_lists_every_setting() -> None:
    example = (Path(__file__).parent.parent / ".env.example").read_text()
    source = (Path(__file__).parent.parent / "settings.py").read_text()
    import re

    names = set(re.findall(r'get\("([A-Z_]+)"', source)) | set(re.findall(r'env, "([A-Z_]+)"', source))
    assert names, "settings.py reads no variables?"
    missing = [n for n in sorted(names) if f"{n}=" not in example]
    assert not missing, f".env.example lacks {missing}"


def test_sampling_settings_are_checked_with_the_fix_in_the_message() -> None:
    settings = from_environ({"LOCAL_TEMPERATURE": "0.7", "LOCAL_MAX_TOKENS": "64"}, dotenv_path=None)
    assert settings.local_temperature == 0.7 and settings.local_max_tokens == 64
    with pytest.raises(SettingsError, match=r"LOCAL_TEMPERATURE must be between 0 and 2, not 5.*\.env"):
        from_environ({"LOCAL_TEMPERATURE": "5"}, dotenv_path=None)
    with pytest.raises(SettingsError, match=r"LOCAL_TOP_P must be a number, not 'high'"):
        from_environ({"LOCAL_TOP_P": "high"}, dotenv_path=None)


def test_app_data_lives_beside_the_conversations_unless_data_dir_says_otherwise(tmp_path: Path) -> None:
    beside = from_environ({"CONVERSATIONS_FILE": str(tmp_path / "a" / "c.json")}, dotenv_path=None)
    assert beside.data_dir == tmp_path / "a" and beside.preferences_file == tmp_path / "a" / "preferences.json"
    chosen = from_environ({"DATA_DIR": str(tmp_path / "data")}, dotenv_path=None)
    assert chosen.conversations_file == tmp_path / "data" / "conversations.json"


def test_an_embedding_endpoint_needs_its_model_and_a_model_its_endpoint(tmp_path: Path) -> None:
    none = tmp_path / "none"
    with pytest.raises(SettingsError, match="EMBED_MODEL is missing"):
        from_environ({"EMBED_API_BASE": "http://127.0.0.1:11434/v1"}, dotenv_path=none)
    with pytest.raises(SettingsError, match="EMBED_API_BASE is empty"):
        from_environ({"EMBED_MODEL": "nomic-embed-text"}, dotenv_path=none)
    local = from_environ({"EMBED_MODEL": "local"}, dotenv_path=none)
    assert local.embed_model == "local" and not local.embed_api_base
