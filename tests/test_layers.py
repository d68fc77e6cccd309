"""The layout's rules, read off the code: every import goes down the layers, never up, and no
module imports itself back through others; the stand-ins never reach production code."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Lowest first. The domain knows nothing of the outside parties, the HTTP layer or the process.
LAYERS = {"lottery": 0, "wechat": 1, "wechatpay": 1, "notify": 1, "relays": 1, "handlers": 2, "config": 3, "services": 3,
          "server": 4}
PRODUCTION = [*LAYERS]


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for name in PRODUCTION + ["fakes"]:
        single = ROOT / f"{name}.py"
        if single.exists():
            found[name] = single
        for path in (ROOT / name).rglob("*.py") if (ROOT / name).is_dir() else ():
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """The project modules `path` imports when it is loaded (module level, not inside functions)."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module)
    return {name for name in names if name in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def layer(module: str) -> int | None:
    return LAYERS.get(module.split(".")[0])


def test_every_import_goes_down_the_layers_never_up():
    upward = sorted(f"{module} imports {target}" for module, targets in graph().items() for target in targets
                    if layer(module) is not None and layer(target) is not None and layer(target) > layer(module))
    assert upward == []


def test_no_production_module_imports_a_stand_in_when_it_is_loaded():
    # server.py imports fakes/ inside the --dev path only; the production image leaves fakes/ out.
    reached = sorted(f"{module} imports {target}" for module, targets in graph().items() for target in targets
                     if layer(module) is not None and target.split(".")[0] == "fakes")
    assert reached == []


def test_the_import_graph_has_no_circles():
    edges = graph()
    circles = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert circles == []
