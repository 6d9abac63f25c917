"""Store URLs: which store, the password from the environment, and how messages show them."""

from __future__ import annotations

import pytest

from recsys.errors import RecsysError
from recsys.export.stores import PASSWORD_ENV, kind, shown, with_password


def test_kind_names_the_store_or_refuses_in_one_sentence():
    assert kind("postgresql://u@h:5432/db") == kind("postgres://h/db") == "postgresql"
    assert kind("redis://h:6379/3") == "redis"
    with pytest.raises(RecsysError, match="neither postgresql://.* nor redis://"):
        kind("mysql://u:secret@h/db")


def test_password_comes_from_the_environment_and_never_shows(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "p@ss:word")
    url = with_password("postgresql://app@db.local:5433/shop")
    assert url == "postgresql://app:p%40ss%3Aword@db.local:5433/shop"
    assert shown(url) == "postgresql://app:***@db.local:5433/shop"
    assert with_password("redis://:inurl@cache:6379/2") == "redis://:inurl@cache:6379/2"
    monkeypatch.delenv(PASSWORD_ENV)
    assert with_password("redis://cache:6379/2") == "redis://cache:6379/2"
