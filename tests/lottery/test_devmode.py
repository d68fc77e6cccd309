"""Development mode's guard and the masking of names on public lists."""
import pytest

from lottery.devmode import clean_name, is_local_database
from lottery.errors import InvalidInput
from lottery.roster import mask_name


@pytest.mark.parametrize("uri", [
    "", "mongodb://127.0.0.1:27017/", "mongodb://localhost", "mongodb://u:p@localhost:1,127.0.0.2:2/db",
    "mongodb://[::1]:27017/?directConnection=true",
])
def test_local_databases_allow_dev_mode(uri):
    assert is_local_database(uri)


@pytest.mark.parametrize("uri", [
    "mongodb://db.example.com/", "mongodb+srv://cluster.example.com/", "mongodb://localhost,db.example.com/",
    "mongodb://127.example.com/", "mongodb://u:p@x@db.example.com/", "mongodb://10.0.0.5:27017/",
])
def test_remote_databases_refuse_dev_mode(uri):
    assert not is_local_database(uri)


@pytest.mark.parametrize("name, masked", [
    ("小", "小*"), ("小明", "小*"), ("王小明", "王*明"), ("欧阳小明", "欧**明"), ("Alexander", "A***r"),
    ("", "微**户"), (None, "微**户"),
])
def test_names_are_masked_like_lottery_mini_programs_do(name, masked):
    assert mask_name(name) == masked


def test_names_are_trimmed_and_bounded():
    assert clean_name("  小  明 ") == "小 明"
    for bad in ("", " ", None, 3, "x" * 21, "a\x07"):
        with pytest.raises(InvalidInput):
            clean_name(bad)
