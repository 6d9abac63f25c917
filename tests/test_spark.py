"""Java detection: Spark must not start on a missing, old or trimmed Java."""

from __future__ import annotations

import os
import stat

import pytest

from recsys.errors import RecsysError
from recsys.spark import check_java, parse_java_version


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2+9"', 11),
    ],
)
def test_parse_java_version(text, major):
    assert parse_java_version(text)[0] == major


def fake_java(tmp_path, version: str, modules: str = "java.base\njdk.incubator.vector\n"):
    """A JAVA_HOME whose bin/java prints the given version and module list."""
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--list-modules" ]; then printf "%s" "$MODULES"; exit 0; fi\n'
        f"echo 'openjdk version \"{version}\" 2020-01-01' >&2\n"
    )
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    os.environ["MODULES"] = modules
    return home


@pytest.fixture(autouse=True)
def fresh_cache():
    check_java.cache_clear()
    yield
    check_java.cache_clear()


def test_no_java_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "missing"))
    with pytest.raises(RecsysError, match="openjdk-17-jre-headless") as err:
        check_java()
    assert "has no bin/java" in str(err.value)


def test_no_java_on_path(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RecsysError, match="no `java` on PATH"):
        check_java()


def test_old_java_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "11.0.2")))
    with pytest.raises(RecsysError, match="is Java 11.0.2"):
        check_java()


def test_trimmed_runtime_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "17.0.9", modules="java.base\n")))
    with pytest.raises(RecsysError, match="jdk.incubator.vector"):
        check_java()


def test_good_java_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "21.0.1")))
    info = check_java()
    assert info.major == 21 and info.executable.endswith("bin/java")
