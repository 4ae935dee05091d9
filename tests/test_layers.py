"""The package's import layering: every module imports only from its own layer or below, never in a
cycle, and imports other diffedu modules at the top of the file (function-local imports are for
optional third-party packages only).  Read from the source with `ast`, so function-local imports
count too.

    base      _checks, _ops, _recording, _version
    core      schedules, processes, forward, posterior, param, precond, losses, guidance
    samplers  trajectory, samplers/*
    models    models/*
    io        trained, sampling, checkpoint, assets, data, rundir, interop, course
    apps      training, gan, metrics, exercises/*, plotting, widgets/*, symbolic/*, __main__
    package   diffedu/__init__.py (the public re-exports)
"""
import ast
from pathlib import Path

import pytest

import diffedu

ROOT = Path(diffedu.__file__).resolve().parent
LAYERS = ["base", "core", "samplers", "models", "io", "apps", "package"]
LAYER_OF = {
    "_checks": "base", "_ops": "base", "_recording": "base", "_version": "base",
    "schedules": "core", "processes": "core", "forward": "core", "posterior": "core", "param": "core",
    "precond": "core", "losses": "core", "guidance": "core",
    "trajectory": "samplers", "samplers": "samplers",
    "models": "models",
    "trained": "io", "sampling": "io", "checkpoint": "io", "assets": "io", "data": "io", "rundir": "io", "interop": "io", "course": "io",
    "training": "apps", "gan": "apps", "metrics": "apps", "exercises": "apps", "plotting": "apps", "widgets": "apps", "symbolic": "apps",
    "__main__": "apps",
}
# third-party packages a function may import locally: optional at run time, or heavy and needed
# only on one path (sympy for the symbolic branch of the arithmetic helpers)
OPTIONAL = {"IPython", "ipywidgets", "sympy", "playwright", "ipykernel"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(mod: str) -> str:
    if mod == "diffedu":
        return "package"
    top = mod.split(".")[1]
    if top not in LAYER_OF:
        raise AssertionError(f"{mod} is in no layer: add it to LAYER_OF in {__file__} and to the README's Layout")
    return LAYER_OF[top]


def imports(mod: str):
    """(imported diffedu module, line, is_local) for every import in mod, and the local third-party ones."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text())
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    # module level: the body, and what module-level `try:`/`if:` blocks hold (guarded optional imports)
    top_level = {id(n) for node in tree.body for n in ([node] + list(ast.walk(node) if isinstance(node, (ast.Try, ast.If)) else []))}
    internal, external_local = [], []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        local = id(node) not in top_level and not _in_type_checking(tree, node)
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        elif isinstance(node, ast.ImportFrom):
            target = node.module
        else:
            target = None
        names = [target] if target else [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] != "diffedu":
                if local and name.split(".")[0] not in OPTIONAL:
                    external_local.append((name, node.lineno))
                continue
            submodules = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in MODULES] \
                if isinstance(node, ast.ImportFrom) else []
            # `from diffedu import assets` imports the module diffedu.assets (its package is already loading)
            for target_mod in submodules or [name]:
                internal.append((target_mod, node.lineno, local))
    return internal, external_local


def _in_type_checking(tree, target) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            if any(n is target for n in ast.walk(node)):
                return True
    return False


def test_every_module_is_in_a_layer():
    for mod in MODULES:
        layer(mod)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_imports_only_go_down(mod):
    internal, external_local = imports(mod)
    here = LAYERS.index(layer(mod))
    upward = [f"line {line}: {target} ({layer(target)})" for target, line, _ in internal
              if LAYERS.index(layer(target)) > here]
    assert not upward, f"{mod} ({layer(mod)}) imports from a higher layer: {upward}"
    local = [f"line {line}: {target}" for target, line, is_local in internal if is_local]
    assert not local, f"{mod} imports diffedu modules inside a function (move them to the top): {local}"
    assert not external_local, (f"{mod} imports {external_local} inside a function; only optional packages "
                                f"{sorted(OPTIONAL)} may be imported there")


def test_no_import_cycles():
    graph = {}
    for mod in MODULES:
        internal, _ = imports(mod)
        edges = set()
        for target, _, _ in internal:
            parts = target.split(".")
            # importing a.b.c runs a.b's __init__ first (the root package is everyone's, left out)
            edges |= {".".join(parts[:k]) for k in range(2, len(parts) + 1)} & set(MODULES)
        parts = mod.split(".")
        graph[mod] = edges - {".".join(parts[:k]) for k in range(1, len(parts) + 1)}   # itself and its packages
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycle = stack[stack.index(n):] + [n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_checker_sees_an_upward_and_a_local_import(tmp_path, monkeypatch):
    """The rules above can fail: a core module importing the io layer inside a function is reported twice."""
    fake = tmp_path / "diffedu" / "schedules.py"
    fake.parent.mkdir()
    fake.write_text("import torch\n\ndef f():\n    from .checkpoint import load_model\n    import numpy\n")
    monkeypatch.setitem(MODULES, "diffedu.schedules", fake)
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path / "diffedu")
    with pytest.raises(AssertionError, match="higher layer"):
        test_imports_only_go_down("diffedu.schedules")
    internal, external_local = imports("diffedu.schedules")
    assert ("diffedu.checkpoint", 4, True) in internal and external_local == [("numpy", 5)]


def test_every_module_docstring_says_what_it_may_import():
    missing = [mod for mod, path in MODULES.items()
               if "Imports:" not in (ast.get_docstring(ast.parse(path.read_text())) or "")]
    assert not missing, f"modules whose opening docstring has no 'Imports:' line: {missing}"
