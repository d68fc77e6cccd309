"""A test-time guard against queries that make the embedded engine read far more documents than
they return.

It listens to every command a database client sends and checks those issued by the project's
own code (lottery/, notify/, handlers/, server.py; not the tests' own checks) against the access
paths the engine has (read in its source, storage.py `_try_index_id_keys`, and measured; see
docs/design.md, "Query shapes on the embedded engine"). A filter is served by an index when:

- it is `{_id: value}` (or `$in`) alone;
- all its conditions are equalities and its fields are the leading fields of one index;
- it is equalities on an index's leading fields plus one range/`$in` on the next field;
- it is one condition on the leading field of an index (a sparse one only if the condition
  implies the field exists).

Otherwise the engine looks up the first condition that an index serves and checks every
document it names: fine when that condition names one aggregate (`_id`, `order_id`,
`sender_id`, `member_id`) or a state only the work under way is in (FEW_STATES), a scan of a
state's documents when not. A top-level `$or`/`$and`
makes any write scan; findAndModify always scans; an `$in` list must be short (its cost grows
with the square of its length). A test whose code breaks one of these fails, naming the query
and the line it came from."""
import os
import sys

from pymongo import monitoring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = tuple(os.path.join(ROOT, part) for part in ("lottery", "notify", "handlers", "server.py"))
RANGE = {"$eq", "$gt", "$gte", "$lt", "$lte", "$in"}
AGGREGATE_IDS = {"_id", "order_id", "sender_id", "member_id"}
MAX_IN = 100
WRITES = {"update", "delete", "findAndModify"}
# Collections that stay small by design, where findAndModify's scan is cheap: `join_sequences`
# holds one counter per drawn gift still taking joins (the draw removes it at the finish).
SMALL = {"join_sequences"}
# States only the work under way is in, so their documents are few: a filter an index serves by
# such a `status` alone reads only them. A gift is `drawing` for the seconds of its draw (or
# while its beacon round is awaited).
FEW_STATES = {"gifts": {"drawing"}}


def project_frame() -> str | None:
    """`file:line` of the innermost project frame that led to this command, or None."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(PROJECT):
            return f"{os.path.relpath(name, ROOT)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class QueryGuard(monitoring.CommandListener):
    """Collects the project's queries the engine cannot serve from an index. `indexes` maps a
    collection to its indexes: (fields in order, sparse, partial filter or None)."""

    def __init__(self, indexes: dict[str, list[tuple]]) -> None:
        self.indexes = indexes
        self.violations: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name not in ("find", "count", "aggregate", "distinct", "update", "delete", "findAndModify"):
            return
        where = project_frame()
        if where is None:
            return
        collection = event.command.get(name)
        for problem in self.problems(name, collection, self.filters(name, event.command)):
            self.violations.append(f"{where}: {name} on {collection}: {problem}")

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    @staticmethod
    def filters(name: str, command: dict) -> list[dict]:
        if name in ("find", "count", "distinct"):
            return [command.get("filter", command.get("query")) or {}]
        if name == "findAndModify":
            return [command.get("query") or {}]
        if name == "update":
            return [u.get("q") or {} for u in command.get("updates", [])]
        if name == "delete":
            return [d.get("q") or {} for d in command.get("deletes", [])]
        pipeline = command.get("pipeline") or [{}]
        if "$changeStream" in pipeline[0]:
            return []  # a change stream reads the oplog, not the collection
        return [pipeline[0].get("$match", {})]

    def problems(self, name: str, collection: str, filters: list[dict]) -> list[str]:
        found = []
        if name == "findAndModify" and collection not in SMALL:
            found.append("findAndModify scans the whole collection on the embedded engine")
        for query in filters:
            path = self.path(collection, query)
            if path is None:
                found.append(f"no index serves this filter (the engine scans): {query}")
            elif path not in ("index",) and path not in AGGREGATE_IDS and not self.few(collection, path, query):
                found.append(f"an index serves only its `{path}` condition; every document it names is "
                             f"read and checked: {query}")
            for field, condition in query.items():
                if isinstance(condition, dict) and len(condition.get("$in", ())) > MAX_IN:
                    found.append(f"`$in` of {len(condition['$in'])} on {field} (at most {MAX_IN})")
        return found

    @staticmethod
    def few(collection: str, path: str, query: dict) -> bool:
        """The served condition is a state whose documents are few (FEW_STATES)."""
        return path == "status" and query["status"] in FEW_STATES.get(collection, ())

    def path(self, collection: str, query: dict) -> str | None:
        """"index" when an index serves the whole filter; the field of the one condition an
        index serves otherwise; None for a scan."""
        if not query or any(field.startswith("$") for field in query):
            return None
        if self.served_whole(collection, query):
            return "index"
        for field, condition in query.items():
            if self.served_whole(collection, {field: condition}):
                return field
        return None

    def served_whole(self, collection: str, query: dict) -> bool:
        if list(query) == ["_id"]:
            return is_range_or_value(query["_id"])
        ranged = [f for f, c in query.items() if isinstance(c, dict)]
        for fields, sparse, *rest in self.indexes.get(collection, []):
            partial = rest[0] if rest else None
            if fields == ["_id"] or (sparse and not implies_existence(query, fields)):
                continue
            if partial and any(query.get(f) != v for f, v in partial.items()):
                continue  # a partial index serves only queries that ask for its condition
            equal = {f for f, c in query.items() if not isinstance(c, dict)} - set(partial or ())
            if not ranged and set(fields[:len(equal)]) == equal:
                return True
            if (len(ranged) == 1 and is_range_or_value(query[ranged[0]]) and len(fields) > len(equal)
                    and set(fields[:len(equal)]) == equal and fields[len(equal)] == ranged[0]):
                return True
        return False


def is_range_or_value(condition: object) -> bool:
    if isinstance(condition, dict):
        return bool(condition) and set(condition) <= RANGE
    return True


def implies_existence(query: dict, fields: list[str]) -> bool:
    """A sparse index holds only documents that have its field: usable when the query asks for
    a value of it."""
    condition = query.get(fields[0])
    return condition is not None and not (isinstance(condition, dict) and "$exists" in condition)


async def index_specs(db) -> dict[str, list[tuple]]:
    """collection -> its indexes, (fields in order, sparse, partial filter or None)."""
    found: dict[str, list[tuple]] = {}
    for name in await db.list_collection_names():
        async for index in await db[name].list_indexes():
            found.setdefault(name, []).append((list(index["key"]), bool(index.get("sparse")),
                                               index.get("partialFilterExpression")))
    return found
