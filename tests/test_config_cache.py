"""Parsed config documents on disk: a large unchanged file is not parsed again, a changed one is,
``${VAR}`` is still read at every load, and a damaged or unsuitable document is never used."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sentinel.config import load_config
from sentinel.config.parsed_cache import MIN_BYTES, _key


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SENTINEL_GUARD_CACHE", str(tmp_path / "cache" / "verdicts.sqlite3"))
    return tmp_path / "cache" / "configs"


def write_big_config(path: Path, extra: str = "", count: int = 200) -> str:
    alerts = "".join(
        f"  - name: alert_{i:04d}\n"
        f"    query: SELECT 'OK' AS status, {i} AS actual_value -- padding padding padding\n"
        f"    schedule: '*/5 * * * *'\n"
        f"    owner: ${{OWNER:-nobody}}\n"
        for i in range(count)
    )
    text = f"database:\n  url: sqlite:///{path.parent / 'd.db'}\nalerts:\n{alerts}{extra}"
    assert len(text) >= MIN_BYTES
    path.write_text(text)
    return text


def stored(cache_dir: Path, text: str) -> Path:
    return cache_dir / f"{_key(text, yaml.__version__)}.json"


def test_a_large_file_seen_before_is_not_parsed_again(cache_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "alerts.yaml"
    text = write_big_config(config)
    first = load_config(config)
    document = stored(cache_dir, text)
    assert document.exists()
    # Prove the stored document is what the next load reads: change one name in it.
    document.write_text(document.read_text().replace("alert_0000", "renamed_0000"))
    second = load_config(config)
    assert second.alerts[0].name == "renamed_0000"
    assert [a.name for a in second.alerts[1:]] == [a.name for a in first.alerts[1:]]


def test_a_changed_file_is_parsed(cache_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "alerts.yaml"
    text = write_big_config(config)
    load_config(config)
    stored(cache_dir, text).write_text(stored(cache_dir, text).read_text().replace("0000", "X"))
    changed = write_big_config(config, count=201)
    assert len(load_config(config).alerts) == 201
    assert stored(cache_dir, changed).exists()


def test_environment_variables_are_read_at_every_load(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "alerts.yaml"
    write_big_config(config)
    monkeypatch.setenv("OWNER", "ana")
    assert load_config(config).alerts[0].owner == "ana"
    monkeypatch.setenv("OWNER", "bo")
    assert load_config(config).alerts[0].owner == "bo"


def test_a_damaged_document_is_ignored_and_removed(cache_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "alerts.yaml"
    text = write_big_config(config)
    cache_dir.mkdir(parents=True)
    stored(cache_dir, text).write_bytes(b'{"database": {"url": "sqlite://"}, "alerts": [{"na')
    assert len(load_config(config).alerts) == 200
    assert stored(cache_dir, text).exists()  # removed, then written again whole
    assert len(load_config(config).alerts) == 200


def test_a_document_json_cannot_give_back_is_not_stored(cache_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "alerts.yaml"
    # A YAML timestamp (a datetime) and a number as a key: JSON would change both.
    text = write_big_config(config, extra="  - name: stamped\n    query: SELECT 1\n")
    config.write_text(text.replace("alerts:\n", "when: 2026-01-01 10:00:00\nalerts:\n"))
    with pytest.raises(Exception, match="when"):
        load_config(config)
    assert not stored(cache_dir, config.read_text()).exists()
    keyed = text.replace("alerts:\n", "1: one\nalerts:\n")
    config.write_text(keyed)
    with pytest.raises(Exception, match="1"):
        load_config(config)
    assert not stored(cache_dir, keyed).exists()


def test_small_files_are_always_parsed(cache_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(
        f"database:\n  url: sqlite:///{tmp_path / 'd.db'}\n"
        "alerts:\n  - name: a\n    query: SELECT 'OK' AS status\n    schedule: '* * * * *'\n"
    )
    assert len(load_config(config).alerts) == 1
    assert not cache_dir.exists()


def test_the_cache_is_off_with_the_guard_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINEL_GUARD_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    config = tmp_path / "alerts.yaml"
    write_big_config(config)
    assert len(load_config(config).alerts) == 200
    assert not (tmp_path / "xdg").exists()


def test_the_least_recently_used_documents_are_pruned(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from sentinel.config import parsed_cache

    monkeypatch.setattr(parsed_cache, "KEEP_FILES", 2)
    config = tmp_path / "alerts.yaml"
    texts = []
    for index, count in enumerate((200, 201, 202)):
        texts.append(write_big_config(config, count=count))
        load_config(config)
        os.utime(stored(cache_dir, texts[-1]), (1000 + index, 1000 + index))
    # The third write pruned the oldest; reading the second again makes it the newest.
    assert [stored(cache_dir, t).exists() for t in texts] == [False, True, True]
    config.write_text(texts[1])
    load_config(config)
    write_big_config(config, count=203)
    load_config(config)
    assert [stored(cache_dir, t).exists() for t in texts] == [False, True, False]


# -- a large new file is parsed by a child process ---------------------------------------------


def test_a_large_new_file_is_parsed_by_a_child_and_loads_the_same(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "alerts.yaml"
    text = write_big_config(config)
    in_process = load_config(config)  # parsed here: the threshold is 4 MB
    stored(cache_dir, text).unlink()
    monkeypatch.setenv("OWNER", "team-a")  # ${VAR} is still read here, after the child parsed
    from sentinel.config import parse_elsewhere
    from sentinel.config.loader import ConfigLoader

    monkeypatch.setattr(parse_elsewhere, "FROM_BYTES", MIN_BYTES)
    monkeypatch.setattr(ConfigLoader, "_parse", lambda *_: pytest.fail("parsed in process"))
    by_child = load_config(config)
    assert stored(cache_dir, text).exists()
    assert [a.model_dump() for a in by_child.alerts] == [
        {**a.model_dump(), "owner": "team-a"} for a in in_process.alerts
    ]


@pytest.mark.usefixtures("cache_dir")
def test_a_large_file_the_child_cannot_parse_fails_as_it_would_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "alerts.yaml"
    write_big_config(config, extra="  - name: [broken\n")
    from sentinel.config import parse_elsewhere
    from sentinel.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as here:
        load_config(config)
    monkeypatch.setattr(parse_elsewhere, "FROM_BYTES", MIN_BYTES)
    with pytest.raises(ConfigurationError) as after_child:
        load_config(config)
    assert str(after_child.value) == str(here.value)
    assert f"{config}:" in str(here.value) and "invalid YAML" in str(here.value)
