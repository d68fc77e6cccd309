"""The query guard (tests/query_guard.py) flags exactly the shapes the embedded engine serves by
reading far more than it returns."""
from tests.query_guard import QueryGuard

GUARD = QueryGuard({
    "gifts": [(["_id"], False), (["status", "due_at"], False), (["sender_id", "created_at"], False)],
    "joins": [(["_id"], False), (["order_id", "member_id"], False), (["notify"], True)],
    "outbox": [(["_id"], False), (["kind", "status", "created_at"], False)],
    "orders": [(["order.key"], False, {"order.key_open": True})],
})


def problems(name: str, collection: str, query: dict) -> list[str]:
    return GUARD.problems(name, collection, [query])


def test_filters_an_index_serves_whole_pass():
    assert problems("find", "gifts", {"_id": {"$in": ["a"] * 100}}) == []
    assert problems("update", "gifts", {"status": "open", "due_at": {"$lte": 5}}) == []
    assert problems("find", "outbox", {"kind": "k", "status": "pending"}) == []  # an index prefix
    assert problems("find", "outbox", {"status": "pending", "kind": "k", "created_at": {"$lt": 3}}) == []
    assert problems("find", "joins", {"notify": "pending"}) == []  # the sparse index holds them
    assert problems("find", "orders", {"order.key": "k", "order.key_open": True}) == []  # the partial index

def test_a_filter_whose_served_condition_names_one_aggregate_passes():
    assert problems("update", "gifts", {"_id": "g", "status": "open", "claimants": {"$ne": "m"}}) == []
    assert problems("update", "joins", {"order_id": {"$in": ["a", "b"]}, "outcome": None}) == []


def test_a_filter_whose_served_condition_is_a_state_of_work_under_way_passes():
    assert problems("update", "gifts", {"status": "drawing", "lease_owner": "token"}) == []
    assert problems("find", "gifts", {"status": "drawing", "lease_until": {"$lt": 3}}) == []


def test_a_filter_served_only_by_a_state_condition_is_flagged():
    # The index serves `kind`: every record of that kind is read.
    assert problems("find", "outbox", {"kind": "k", "status": "taken", "lease_until": {"$lt": 3}})
    assert problems("find", "gifts", {"status": "open", "lease_until": {"$lt": 3}})


def test_a_write_with_a_top_level_or_and_find_and_modify_are_flagged():
    assert problems("update", "gifts", {"_id": "g", "$or": [{"a": 1}, {"b": 2}]})
    assert problems("findAndModify", "gifts", {"_id": "g"})


def test_a_filter_no_index_serves_is_flagged():
    assert problems("find", "gifts", {"wish": "x"})
    assert problems("find", "gifts", {"status": {"$ne": "finished"}})  # a negation is no range
    assert problems("find", "joins", {"notify": {"$exists": False}})  # the sparse index lacks them
    assert problems("delete", "joins", {})
    assert problems("find", "proofs", {"seed": "s"})
    assert problems("find", "orders", {"order.key": "k"})  # the partial index holds only open orders


def test_a_long_in_list_is_flagged():
    assert problems("find", "gifts", {"_id": {"$in": [str(i) for i in range(101)]}})
