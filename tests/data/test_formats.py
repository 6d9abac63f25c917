"""Format detection and item files (no Spark)."""

from __future__ import annotations

import pytest

from recsys.data.formats import check_header, get_format, locate
from recsys.data.items import read_items
from recsys.errors import RecsysError


def test_detects_each_movielens_layout(write, tmp_path):
    write("a/u.data", "1\t2\t3\t4\n")
    write("a/u.item", "")
    assert locate(tmp_path / "a").spec.name == "ml-100k"
    write("b/ratings.dat", "1::2::3::4\n")
    assert locate(tmp_path / "b").spec.name == "ml-1m"
    write("ml-10M100K/ratings.dat", "1::2::3.5::4\n")
    assert locate(tmp_path / "ml-10M100K").spec.rating_min == 0.5
    write("c/ratings.csv", "userId,movieId,rating,timestamp\n")
    write("c/movies.csv", "movieId,title,genres\n")
    located = locate(tmp_path / "c")
    assert located.spec.name == "ml-csv" and located.items == tmp_path / "c" / "movies.csv"
    assert locate(tmp_path / "c" / "ratings.csv").spec.name == "ml-csv"
    write("d/log.csv", "u,i\n")
    assert locate(tmp_path / "d" / "log.csv").spec.name == "csv"
    assert locate(tmp_path / "d").spec.name == "csv"
    assert locate(tmp_path / "a" / "u.data", "ml-100k").items == tmp_path / "a" / "u.item"


def test_release_aliases_and_unknown_format():
    assert get_format("ml-25m").name == "ml-csv"
    with pytest.raises(RecsysError, match="--format 'ml-9m' is not a known format"):
        get_format("ml-9m")


def test_undetectable_and_mismatched(write, tmp_path):
    write("e/readme.txt", "hello")
    with pytest.raises(RecsysError, match="cannot tell the format"):
        locate(tmp_path / "e")
    with pytest.raises(RecsysError, match="has no ratings.dat, which format ml-1m needs"):
        locate(tmp_path / "e", "ml-1m")
    bad = write("f/ratings.csv", "user,item\n1,2\n")
    with pytest.raises(RecsysError, match="not the ml-csv header"):
        check_header(locate(bad, "ml-csv"))


def test_movies_csv_quotes_genres_and_encodings(write):
    path = write(
        "m/movies.csv",
        b'movieId,title,genres\n1,"City, The (1990)",Drama|War\n'
        b"2,Caf\xe9 (1991),(no genres listed)\n3,broken line\n\n1,Again (2000),Drama\n",
    )
    out = read_items(path, get_format("ml-csv"))
    assert out.items["item_id"].tolist() == ["1", "2"]
    assert out.items["title"].tolist() == ["City, The (1990)", "Café (1991)"]
    assert out.items["genres"].tolist() == [["Drama", "War"], []]
    assert out.redecoded == 1
    assert [reason for _, reason in out.rejected] == ["bad_item_row", "duplicate_item_id"]


def test_ml1m_movies_dat(write):
    path = write("m/movies.dat", b"1::Toy Story (1995)::Animation|Children's\n2::Bad\n")
    out = read_items(path, get_format("ml-1m"))
    assert out.items["genres"].tolist() == [["Animation", "Children's"]]
    assert out.rejected == [("2::Bad", "bad_item_row")]
