from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shoplm.config import Settings


def test_defaults_put_everything_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'shoplm.sqlite'}"
    assert settings.encoder.name == "e5-onnx"
    assert settings.generator.kind == "template"
    assert settings.server.host == "127.0.0.1"


def test_environment_overrides_including_nested(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOPLM_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("SHOPLM_ENCODER__NAME", "minilm")
    monkeypatch.setenv("SHOPLM_GENERATOR__KIND", "openai")
    settings = Settings()
    assert settings.data_dir == tmp_path / "env"
    assert settings.encoder.name == "minilm"
    assert settings.generator.kind == "openai"


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "shoplm.toml").write_text(
        'data_dir = "/tmp/from-toml"\nseed = 7\n[encoder]\nname = "minilm"\nbatch_size = 8\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOPLM_SEED", "9")
    settings = Settings()
    assert settings.data_dir == Path("/tmp/from-toml")
    assert settings.encoder.batch_size == 8
    assert settings.seed == 9


def test_bad_values_are_refused_with_the_field_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"batch_size"):
        Settings(data_dir=tmp_path, encoder={"batch_size": 0})
    with pytest.raises(ValidationError, match=r"no_such_setting"):
        Settings(data_dir=tmp_path, no_such_setting=1)


def test_missing_config_file_named_by_env_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOPLM_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        Settings()


def test_secrets_are_masked_in_public_dict(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, pseudonymization_key="s3cret", generator={"api_key": "sk-123"})
    text = str(settings.public_dict())
    assert "s3cret" not in text and "sk-123" not in text


def test_generated_key_is_stable_and_private(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).hmac_key
    second = Settings(data_dir=tmp_path).hmac_key
    assert first == second and len(first) == 64
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
