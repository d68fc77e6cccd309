"""The query guard (tests/query_guard.py) flags exactly the shapes the embedded engine scans."""
from tests.query_guard import QueryGuard

GUARD = QueryGuard({"gifts": {"status", "scheduled", "sender_id"}, "joins": {"order_id", "notify"}})


def problems(name: str, collection: str, query: dict) -> list[str]:
    return GUARD.problems(name, collection, [query])


def test_filters_an_index_serves_pass():
    assert problems("update", "gifts", {"_id": "g", "status": "open", "claimants": {"$ne": "m"}}) == []
    assert problems("update", "gifts", {"status": "open", "due_at": {"$lte": 5}}) == []
    assert problems("find", "joins", {"order_id": {"$in": ["a", "b"]}, "outcome": None}) == []
    assert problems("find", "gifts", {"_id": {"$in": ["a"] * 100}}) == []


def test_a_write_with_a_top_level_or_is_flagged():
    assert problems("update", "gifts", {"_id": "g", "$or": [{"a": 1}, {"b": 2}]})


def test_find_and_modify_is_flagged_whatever_its_filter():
    assert problems("findAndModify", "gifts", {"_id": "g"})


def test_a_filter_no_index_serves_is_flagged():
    assert problems("find", "gifts", {"wish": "x"})
    assert problems("find", "gifts", {"status": {"$ne": "finished"}})  # a negation is no range
    assert problems("delete", "joins", {})
    assert problems("find", "proofs", {"seed": "s"})  # a collection with only its _id index


def test_a_long_in_list_is_flagged():
    assert problems("find", "gifts", {"_id": {"$in": [str(i) for i in range(101)]}})
