"""A test-time guard against queries that make the embedded engine read a whole collection.

It listens to every command a database client sends and checks those issued by the project's
own code (lottery/, notify/, handlers/, server.py; not the tests' own checks) against the shapes
the engine serves from an index (measured, and read in its source; docs/design.md, "Query
shapes on the embedded engine"):

- a filter needs a plain condition (a value, `$eq`, `$in`, or a range) on `_id` or on the first
  field of one of the collection's indexes; otherwise the engine scans;
- a write (update, delete, findAndModify) must have no top-level `$or`/`$and`/`$nor`: its write
  path then scans whatever else the filter says;
- findAndModify scans its whole collection on the embedded engine, whatever the filter;
- an `$in` list is short (its cost grows with the square of its length).

A test whose code under test breaks one of these fails, naming the query and where it came from."""
import os
import sys

from pymongo import monitoring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = tuple(os.path.join(ROOT, part) for part in ("lottery", "notify", "handlers", "server.py"))
SERVED_OPERATORS = {"$eq", "$in", "$gt", "$gte", "$lt", "$lte"}
COMBINATORS = {"$or", "$and", "$nor"}
MAX_IN = 100
WRITES = {"update", "delete", "findAndModify"}


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
    """Collects the project's queries that would scan; `indexed` maps a collection to the first
    fields of its indexes."""

    def __init__(self, indexed: dict[str, set[str]]) -> None:
        self.indexed = indexed
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
        if name == "findAndModify":
            found.append("findAndModify scans the whole collection on the embedded engine")
        for query in filters:
            combined = COMBINATORS & set(query)
            if combined and name in WRITES:
                found.append(f"a write filter with a top-level {sorted(combined)} scans: {query}")
            if not any(self.served(field, condition, collection) for field, condition in query.items()):
                found.append(f"no index serves this filter: {query}")
            for field, condition in query.items():
                if isinstance(condition, dict) and len(condition.get("$in", ())) > MAX_IN:
                    found.append(f"`$in` of {len(condition['$in'])} on {field} (at most {MAX_IN})")
        return found

    def served(self, field: str, condition: object, collection: str) -> bool:
        if field != "_id" and field not in self.indexed.get(collection, set()):
            return False
        if isinstance(condition, dict):
            return bool(condition) and set(condition) <= SERVED_OPERATORS
        return True


async def indexed_fields(db) -> dict[str, set[str]]:
    """collection -> the first field of each of its indexes."""
    found: dict[str, set[str]] = {}
    for name in await db.list_collection_names():
        async for index in await db[name].list_indexes():
            found.setdefault(name, set()).add(next(iter(index["key"])))
    return found
