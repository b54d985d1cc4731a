"""The walls: every import in drainage/, channels/ and scheduler.py goes one way, and none goes round in a cycle.

Layers, from the top (a module may import its own layer and any layer below it, never one above):

    faces      the command line, scheduler.py, the tracker's ASGI app and server, web pages, presenters
    services   the dispatcher, the daemon, feeds, the email fan-out, reports, the tracker's writer
    core       config and campaign models with their loader, rendering, links/UTM, the journal
    store      SQLModel tables, sessions, migrations
    interface  the channel interface and what a plugin may use: errors, text length, an HTTP transport

The interface sits below the store: it can never reach the database, so neither can a plugin. A plugin
(`channels.*`) imports only interface modules and third-party libraries, and no drainage module imports a
plugin (they are found through entry points). Below the faces, no module imports a screen or web library.

Every import counts: top-level, inside functions, and under `if TYPE_CHECKING:` (a type a module names is a
module it depends on; hiding an import does not move the wall). Every module must be in `LAYERS`: a new module
fails here until it is given a layer. There is no exception list.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ORDER = ("interface", "store", "core", "services", "faces")
"""Layers from the bottom up."""

PLUGINS = "channels"
"""The package of channel plugins: each may import only `interface` modules and third-party libraries."""

SCREEN_AND_WEB = ("starlette", "uvicorn", "typer", "click", "rich")
"""Libraries only the faces may import (the core knows no screen and no web framework)."""

LAYERS: dict[str, tuple[str, ...]] = {
    # A name is one module; "pkg.*" is every module of the package pkg (and pkg itself).
    "faces": (
        "scheduler", "drainage.__main__", "drainage.cli", "drainage.cli.*",
        "drainage.email.web",
        "drainage.tracker.app", "drainage.tracker.server", "drainage.tracker.bio", "drainage.tracker.pages",
        "drainage.reports.web", "drainage.reports.render_table", "drainage.reports.render_html",
        "drainage.reports.render_csv_json", "drainage.terminal",
    ),
    "services": (
        "drainage.daemon", "drainage.dispatch", "drainage.sending", "drainage.status", "drainage.unknowns",
        "drainage.indexnow", "drainage.metrics", "drainage.pacing", "drainage.keydocs", "drainage.schemas",
        "drainage.feeds.*",
        "drainage.email.service", "drainage.email.fanout", "drainage.email.ledger", "drainage.email.recorder",
        "drainage.email.manual", "drainage.email.mime", "drainage.email.throttle", "drainage.email.tokens",
        "drainage.email.subscribers", "drainage.email.suppression", "drainage.email.bounces",
        "drainage.email.addresses",
        "drainage.reports", "drainage.reports.query", "drainage.reports.model", "drainage.reports.posts",
        "drainage.reports.stats", "drainage.reports.variants", "drainage.reports.charts",
        "drainage.reports.request", "drainage.reports.uniques",
        "drainage.tracker", "drainage.tracker.supervisor", "drainage.tracker.recorder", "drainage.tracker.writer",
        "drainage.tracker.writer_process", "drainage.tracker.linkcache", "drainage.tracker.visitors",
        "drainage.tracker.bots", "drainage.tracker.agents", "drainage.tracker.clickids",
        "drainage.tracker.metrics", "drainage.tracker.orders",
    ),
    "core": (
        "drainage.config", "drainage.campaigns", "drainage.project", "drainage.validation", "drainage.priors",
        "drainage.posts", "drainage.registry",
        "drainage.render", "drainage.links", "drainage.journal", "drainage.schedule", "drainage.sources",
        "drainage.yaml_fast", "drainage.yaml_cache", "drainage.markets", "drainage.campaign_markets",
        "drainage.translations", "drainage.logs", "drainage.clock", "drainage.workers",
        "drainage.email", "drainage.email.compose", "drainage.email.slots",
    ),
    "store": ("drainage.store.*",),
    "interface": (
        "drainage", "drainage.channel", "drainage.errors", "drainage.units", "drainage.textlength",
        "drainage.transport", "drainage.graph",
    ),
}


def module_files(root: Path, packages: Iterable[str], files: Iterable[str] = ()) -> dict[str, Path]:
    """Every module of `packages` (directories under `root`) and the single-file modules `files`, by name."""
    found: dict[str, Path] = {}
    paths = [p for package in packages for p in sorted((root / package).rglob("*.py"))]
    for path in paths + [root / f for f in files]:
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> tuple[set[str], set[str]]:
    """The known modules `name` imports (anywhere in the file), and the top-level names of the others."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    ours: set[str] = set()
    theirs: set[str] = set()

    def add(target: str) -> None:
        found = target
        while found and found not in known:
            found = found.rpartition(".")[0]
        if found:
            ours.add(found)
        else:
            theirs.add(target.partition(".")[0])

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from pkg import module` imports pkg.module; `from mod import name`: mod
                add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    ours.discard(name)
    return ours, theirs


def layer_of(name: str, layers: Mapping[str, tuple[str, ...]]) -> str | None:
    """The layer `name` is listed in: by its own name, else by its closest enclosing "pkg.*"."""
    best: tuple[int, str] | None = None
    for layer, names in layers.items():
        for entry in names:
            if entry == name:
                return layer
            if entry.endswith(".*"):
                prefix = entry[:-2]
                if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), layer)
    return best[1] if best else None


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import cycles: each strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def check(root: Path, packages: Iterable[str], files: Iterable[str], layers: Mapping[str, tuple[str, ...]],
          plugins: str = PLUGINS, order: tuple[str, ...] = ORDER) -> list[str]:
    """Every wrong-way edge, plugin import, unclassified module and cycle, as one message each."""
    known = module_files(root, packages, files)
    problems: list[str] = []
    graph: dict[str, set[str]] = {}
    for name, path in sorted(known.items()):
        ours, theirs = imports_of(name, path, known)
        graph[name] = ours
        rel = path.relative_to(root)
        if name == plugins or name.startswith(plugins + "."):
            for target in sorted(ours):
                if layer_of(target, layers) != "interface":
                    problems.append(f"{rel}: plugin {name} imports {target}; a plugin may import only the channel "
                                    f"interface ({', '.join(layers['interface'])}) and third-party libraries")
            continue
        layer = layer_of(name, layers)
        if layer is None:
            problems.append(f"{rel}: module {name} has no layer: add it to LAYERS in tests/test_layers.py "
                            f"(one of {', '.join(reversed(order))})")
            continue
        if layer != "faces":
            for library in sorted(set(theirs) & set(SCREEN_AND_WEB)):
                problems.append(f"{rel}: {name} ({layer}) imports {library}; only faces talk to screens and the web")
        for target in sorted(ours):
            if target == plugins or target.startswith(plugins + "."):
                problems.append(f"{rel}: {name} imports the plugin {target}; plugins are found through entry points")
                continue
            other = layer_of(target, layers)
            if other is not None and order.index(other) > order.index(layer):
                problems.append(f"{rel}: wrong-way import: {name} ({layer}) imports {target} ({other}); "
                                "move what it needs down to a lower layer")
    for component in cycles(graph):
        problems.append("import cycle among " + ", ".join(component))
    return problems


def test_imports_flow_one_way() -> None:
    problems = check(ROOT, ["drainage", PLUGINS], ["scheduler.py"], LAYERS)
    assert not problems, "\n".join(problems)


def test_every_module_has_one_layer() -> None:
    listed = [entry for names in LAYERS.values() for entry in names]
    assert len(listed) == len(set(listed)), "a module is listed twice in LAYERS"
    known = module_files(ROOT, ["drainage"], ["scheduler.py"])
    stale = [e for e in listed if not e.endswith(".*") and e not in known]
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_the_email_plugin_looks_like_its_siblings() -> None:
    """The email plugin declares its options and talks SMTP; the fan-out around it is the dispatcher's."""
    known = module_files(ROOT, ["drainage", PLUGINS], ["scheduler.py"])
    ours, theirs = imports_of("channels.email", known["channels.email"], known)
    assert ours == {"drainage.channel", "drainage.errors"}
    assert {"aiosmtplib", "pydantic"} <= theirs and not theirs & {"sqlalchemy", "sqlmodel", "jinja2"}


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_checker_finds_a_wrong_way_edge_a_cycle_and_a_stray_plugin_import(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "app/__init__.py": "",
        "app/face.py": "from app import service\n",
        "app/service.py": "from app.core import thing\n",
        "app/core.py": "def thing():\n    from app import service  # hidden in a function: still an edge\n",
        "app/store/__init__.py": "",
        "app/store/db.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.core import thing\n",
        "app/iface.py": "import starlette\n",
        "app/new.py": "",
        "plugins/__init__.py": "",
        "plugins/one.py": "import httpx\nfrom app.iface import X\nfrom app.store.db import session\n",
    })
    layers = {"faces": ("app.face",), "services": ("app.service",), "core": ("app.core",),
              "store": ("app.store.*",), "interface": ("app", "app.iface")}
    problems = check(root, ["app", "plugins"], [], layers, plugins="plugins")
    assert problems == [
        "app/core.py: wrong-way import: app.core (core) imports app.service (services); move what it needs down to "
        "a lower layer",
        "app/iface.py: app.iface (interface) imports starlette; only faces talk to screens and the web",
        "app/new.py: module app.new has no layer: add it to LAYERS in tests/test_layers.py (one of faces, services, "
        "core, store, interface)",
        "app/store/db.py: wrong-way import: app.store.db (store) imports app.core (core); move what it needs down to "
        "a lower layer",
        "plugins/one.py: plugin plugins.one imports app.store.db; a plugin may import only the channel interface "
        "(app, app.iface) and third-party libraries",
        "import cycle among app.core, app.service",
    ]


def test_the_checker_passes_a_clean_package(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "app/__init__.py": "", "app/face.py": "import typer\nfrom . import service\n",
        "app/service.py": "from .core import thing\nfrom app import iface\n", "app/core.py": "thing = 1\n",
        "app/iface.py": "", "plugins/one.py": "from app.iface import X\n",
    })
    layers = {"faces": ("app.face",), "services": ("app.service",), "core": ("app.core",), "store": (),
              "interface": ("app", "app.iface")}
    assert check(root, ["app", "plugins"], [], layers, plugins="plugins") == []
