"""The import graph of fhsdk, read from the source: layers point down, nothing forms a circle, and a
module imports inside a function only what may be missing (an optional extra) or what the package's
lazy facade defers. docs/ARCHITECTURE.md draws the same layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fhsdk"

# Lowest first; a module may import its own layer or any layer below it.
LAYERS = (
    (
        "foundations",
        (
            "fhsdk._version",
            "fhsdk.errors",
            "fhsdk.registry",
            "fhsdk.weights",
            "fhsdk.results",
            "fhsdk.colour",
            "fhsdk.stage_timer",
            "fhsdk.kernels_reference",
            "fhsdk.threads",
            "fhsdk.files",
            "fhsdk.images",
            "fhsdk.open_set",
            "fhsdk._C",
        ),
    ),
    ("compute (knows no faces)", ("fhsdk.kernels", "fhsdk.runtime")),
    ("networks", ("fhsdk.models",)),
    (
        "stages",
        (
            "fhsdk.detect",
            "fhsdk.align",
            "fhsdk.degrade",
            "fhsdk.stages",
            "fhsdk.embed",
            "fhsdk.hallucinate",
            "fhsdk.gallery",
            "fhsdk.track",
            "fhsdk.shots",
            "fhsdk.video",
            "fhsdk.outputs",
        ),
    ),
    ("pipeline", ("fhsdk.pipeline",)),
    ("applications", ("fhsdk.eval", "fhsdk.demo")),
    ("entry points", ("fhsdk.cli", "fhsdk.__main__", "fhsdk")),
)

# Imported inside functions on purpose: optional extras and accelerator libraries that may be absent.
OPTIONAL = {"tensorrt", "onnxruntime", "cupy", "cryptography", "faiss", "matplotlib"}

# Edges allowed against the layering (none: presets now register beside their models).
KNOWN_UPWARD: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    found["fhsdk._C"] = PACKAGE / "_C"  # the compiled extension: a leaf
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md"
    return best


def _targets(module: str, node: ast.AST) -> list[str]:
    """The fhsdk modules an import statement loads (a name imported from a package may be a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def _imports():
    """(module, imported name, inside a function?) for every import statement in the package."""
    for module, path in MODULES.items():
        if not path.suffix:
            continue
        tree = ast.parse(path.read_text())
        nested = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                nested.update(id(inner) for inner in ast.walk(node) if inner is not node)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node):
                    yield module, target, id(node) in nested
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "_import")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("fhsdk")
            ):
                yield module, node.args[0].value, True


def _internal_edges() -> set[tuple[str, str]]:
    edges = set()
    for module, target, _ in _imports():
        if target.startswith("fhsdk") and target != module:
            while target not in MODULES:  # `import fhsdk.models.edsr` style names
                target = target.rsplit(".", 1)[0]
            edges.add((module, target))
    return edges


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(
        (module, target)
        for module, target in _internal_edges()
        if _layer(target) > _layer(module) and (module, target) not in KNOWN_UPWARD
    )
    assert not upward, "upward imports: " + ", ".join(f"{a} -> {b}" for a, b in upward)


def test_the_runtime_knows_no_faces():
    face_aware = ("fhsdk.detect", "fhsdk.align", "fhsdk.embed", "fhsdk.hallucinate", "fhsdk.pipeline", "fhsdk.models")
    leaks = sorted(
        (module, target)
        for module, target in _internal_edges()
        if module.startswith("fhsdk.runtime") and target.startswith(face_aware) and (module, target) not in KNOWN_UPWARD
    )
    assert not leaks, leaks


def test_the_import_graph_has_no_circle():
    graph: dict[str, set[str]] = {}
    for module, target in _internal_edges() - KNOWN_UPWARD:
        graph.setdefault(module, set()).add(target)
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_imports_inside_functions_are_only_optional_extras_or_the_lazy_facade():
    deferred = sorted(
        (module, target)
        for module, target, inside in _imports()
        if inside
        and module != "fhsdk"
        and (module, target) not in KNOWN_UPWARD
        and target.split(".")[0] not in OPTIONAL
    )
    assert not deferred, "imports inside functions without a reason: " + ", ".join(f"{a}: {b}" for a, b in deferred)


def test_every_stage_is_built_the_same_way_and_meets_its_protocol():
    """Detectors, hallucinators and recognisers: by name, device and backend, and each provides what
    fhsdk.stages says Pipeline relies on."""
    from fhsdk.detect import create_detector, list_detectors
    from fhsdk.embed import create_recognizer
    from fhsdk.hallucinate import PACKAGED, create_hallucinator
    from fhsdk.stages import Detector, Hallucinator, Recognizer

    for name in list_detectors():
        assert isinstance(create_detector(name, device="cpu", backend="torch"), Detector), name
    for name in ["bicubic", *(n for n, path in PACKAGED.items() if path.is_file())]:
        assert isinstance(create_hallucinator(name, device="cpu", backend="torch"), Hallucinator), name
    assert isinstance(create_recognizer("dlib_resnet_v1", device="cpu", backend="torch"), Recognizer)
