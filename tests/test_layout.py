"""The map of the code, kept true: which package may import which, no import circles, no Flask in
rule modules, and no module or function grown into a blob.

Imports are read with :mod:`ast` from every file of the shipped packages, at module level and
inside functions alike (a function-level import is still a dependency; it only hides a circle).
The rules are the ones ``docs/architecture.md`` draws; a change to one is a change to both.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sync", "drivers", "edge", "cloud", "provisioning", "tools")
FLASK = ("flask", "flask_babel", "werkzeug", "jinja2")

# The hub's areas and what each may import besides itself (its pages and API may also import
# cloud.web, the Flask shell). Read upwards, never down: catalog -> core; inventory -> catalog;
# sales -> inventory, catalog and the fleet's keys; ops reads fleet and sales. Only the modules
# that compose the whole hub see every area: the app factory, the command line, the demo data,
# the start page, every table (schema.py, for Alembic) and every error code (errors.py).
HUB_AREAS: dict[str, set[str]] = {
    "core": set(),
    "staff": {"core"},
    "web": {"core", "staff"},
    "catalog": {"core"},
    "inventory": {"core", "catalog"},
    "fleet": {"core", "catalog"},
    "sales": {"core", "catalog", "inventory", "fleet"},
    "ops": {"core", "catalog", "inventory", "fleet", "sales", "staff"},
    # payments post every payment and refund to the ledger, in their own transaction
    "payments": {"core", "catalog", "inventory", "fleet", "sales", "ledger"},
    # the ledger (issue 19): journal, splits, settlement, reconciliation; reads orders and
    # tickets (what was sold where), staff for the portal's password hash
    "ledger": {"core", "catalog", "inventory", "sales", "staff"},
    # buyers: accounts, identities and their verification, companions (issue 16); staff only
    # for the password hash and policy buyers' accounts share with staff accounts (accounts),
    # messaging to send a buyer's paid tickets (delivery.py)
    "buyers": {"core", "catalog", "inventory", "sales", "staff", "messaging"},
    # the public buyer site sits on top: nothing imports it
    "storefront": {"core", "catalog", "inventory", "fleet", "sales", "payments", "buyers",
                   "messaging", "lottery", "channels"},
    # the presale lottery (issue 18): applications paid and refunded through payments, holders
    # from buyers' verified people, results told through the outbox
    "lottery": {"core", "catalog", "inventory", "sales", "payments", "buyers"},
    # messaging (issue 16): sends the outbox, delivers tickets by link; never buyers or payments
    "messaging": {"core", "catalog", "inventory", "sales"},
    # channels and distribution (issue 20): sells through sales under a channel's name and
    # quotas, posts partners' prepaid and credit accounts through the ledger; staff for booths'
    # staff and the representatives' password hash
    "channels": {"core", "catalog", "inventory", "sales", "ledger", "staff", "fleet"},
}
HUB_COMPOSERS = {"cloud", "cloud.app", "cloud.cli", "cloud.demo", "cloud.home", "cloud.schema",
                 "cloud.errors"}

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
# Known exceptions, each with its reason. Keep it short: the limits find blobs, and a function
# on this list is one a reader can still follow top to bottom.
LONG_FUNCTIONS: dict[str, str] = {}
LONG_MODULES: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    source: str          # the importing module, dotted
    target: str          # the imported module, dotted (resolved to a file of ours, if one)
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def files() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        base = ROOT / package
        if base.is_dir():
            for path in sorted(base.rglob("*.py")):
                found[_module_name(path)] = path
    return found


@cache
def tree(module: str) -> ast.Module:
    path = files()[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_package(module: str) -> bool:
    return files()[module].name == "__init__.py"


def _resolve(name: str) -> str:
    """The longest prefix of ``name`` that is one of our files, else ``name`` itself."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in files():
            return candidate
    return name


def _absolute(source: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".")
    if not _is_package(source):
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def imports() -> tuple[Import, ...]:
    found = []
    for source in files():
        for node in ast.walk(tree(source)):
            if isinstance(node, ast.Import):
                found += [Import(source, _resolve(a.name), node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(source, node)
                for alias in node.names:
                    # ``from pkg import mod`` imports a module; ``from mod import name`` a name.
                    found.append(Import(source, _resolve(f"{base}.{alias.name}"), node.lineno))
    return tuple(i for i in found if i.target != i.source)


def _top(module: str) -> str:
    return module.split(".")[0]


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _where(i: Import) -> str:
    return f"{files()[i.source].relative_to(ROOT)}:{i.line} imports {i.target}"


# --- the sides --------------------------------------------------------------------------------

SIDE_RULES = [
    # (importer, forbidden target, why)
    ("sync", "edge", "the contract imports neither side"),
    ("sync", "cloud", "the contract imports neither side"),
    ("sync", "drivers", "the contract knows no device"),
    ("drivers", "edge", "drivers import neither side"),
    ("drivers", "cloud", "drivers import neither side"),
    ("edge", "cloud", "the appliance never imports the hub"),
    ("cloud", "edge", "the hub never imports the appliance"),
    ("cloud", "drivers", "the hub drives no device"),
    ("provisioning", "cloud", "the field-tech CLI runs on appliances, which have no hub"),
    ("provisioning", "drivers.sim", "the field-tech CLI ships no simulator"),
    ("provisioning", "tools", "the field-tech CLI ships without the demo"),
    ("edge", "tools", "tools (the demo) sit on top of everything"),
    ("cloud", "tools", "tools (the demo) sit on top of everything"),
]


@pytest.mark.parametrize("importer,forbidden,why", SIDE_RULES,
                         ids=[f"{a}-not-{b}" for a, b, _ in SIDE_RULES])
def test_sides_import_only_downwards(importer, forbidden, why):
    bad = [_where(i) for i in imports() if _under(i.source, importer) and _under(i.target, forbidden)]
    assert not bad, f"{why}:\n" + "\n".join(bad)


def test_only_the_appliances_web_imports_it():
    # edge/cli.py is the appliance's one command line: it starts every process, the web's too.
    bad = [_where(i) for i in imports()
           if _under(i.target, "edge.web") and not _under(i.source, "edge.web")
           and _top(i.source) == "edge" and i.source != "edge.cli"]
    assert not bad, "edge.web is the top of the appliance; nothing below it imports it:\n" + "\n".join(bad)


# --- the hub's areas --------------------------------------------------------------------------

def _area(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "cloud" and len(parts) > 1 and parts[1] in HUB_AREAS else None


def _is_view(module: str) -> bool:
    """A module that turns HTTP into calls: a page, an API, or an area's registration."""
    last = module.split(".")[-1]
    return (last in {"pages", "api", "sync_api", "views"} or last.endswith(("_pages", "_api"))
            or ".pages." in module + "." or _area(module) == "web"
            or (_area(module) is not None and _is_package(module)))


def test_the_hub_is_laid_out_by_area():
    loose = [m for m in files() if _top(m) == "cloud" and m not in HUB_COMPOSERS
             and _area(m) is None and not _under(m, "cloud.migrations")]
    assert not loose, ("every hub module lives in an area (core, web, catalog, inventory, sales, "
                       "fleet, ops, staff) or composes the hub (app, cli, demo, home, schema, errors): " + ", ".join(loose))


def test_hub_areas_import_downwards_only():
    bad = []
    for i in imports():
        src, dst = _area(i.source), _area(i.target)
        if src is None or dst is None or src == dst:
            continue
        # a view may also use the Flask shell and ask the staff area who may see it
        allowed = HUB_AREAS[src] | ({"web", "staff"} if _is_view(i.source) else set())
        if dst not in allowed:
            bad.append(_where(i))
    assert not bad, "an area imports only the areas below it (docs/architecture.md):\n" + "\n".join(bad)


def test_nothing_below_the_hub_imports_its_composers():
    bad = [_where(i) for i in imports() if i.target in HUB_COMPOSERS - {"cloud"}
           and _area(i.source) is not None]
    assert not bad, "areas register themselves; they never import the app or the CLI:\n" + "\n".join(bad)


# --- Flask only in views ----------------------------------------------------------------------

def _may_use_flask(module: str) -> bool:
    if _under(module, "edge.web"):
        return True
    if _top(module) == "cloud":
        return module in HUB_COMPOSERS or _is_view(module)
    return _under(module, "tools")


def _third_party(module: str) -> set[str]:
    names = set()
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


# Rule modules that use Jinja without the web: the messages' templates, which staff edit, are
# rendered by Jinja's sandboxed environment (messaging, issue 16). Jinja only, never Flask.
JINJA_SANDBOX = {"cloud.messaging.rendering"}


def _web_imports(module: str) -> set[str]:
    found = _third_party(module) & set(FLASK)
    return found - {"jinja2"} if module in JINJA_SANDBOX else found


def test_rules_import_no_flask():
    bad = [f"{files()[m].relative_to(ROOT)} imports {sorted(_web_imports(m))}"
           for m in files() if not _may_use_flask(m) and _web_imports(m)]
    assert not bad, "rule modules are plain functions; only views use Flask:\n" + "\n".join(bad)


# --- no circles -------------------------------------------------------------------------------

def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in files()}
    for i in imports():
        if i.target in files():
            graph[i.source].add(i.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one file (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _package_of(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def test_no_import_circles_between_files():
    # A package's __init__ importing its own modules (to re-export them) is not a circle of
    # design; every other loop is.
    graph = {m: {t for t in targets if not (_is_package(m) and _package_of(t) == m)}
             for m, targets in _graph().items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# --- no blobs ---------------------------------------------------------------------------------

def test_modules_stay_readable():
    long = {str(p.relative_to(ROOT)): n for p in files().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert set(long) <= set(LONG_MODULES), f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_functions_stay_readable():
    long = {}
    for module, path in files().items():
        if _under(module, "cloud.migrations"):
            continue        # history: a migration is never edited once it has shipped
        for node in ast.walk(tree(module)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}::{node.name}"] = lines
    assert set(long) <= set(LONG_FUNCTIONS), f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_allow_lists_name_what_exists():
    # An exception outlives its reason when the code it excused is split or gone.
    names = {f"{p.relative_to(ROOT)}::{n.name}" for m, p in files().items()
             for n in ast.walk(tree(m)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert set(LONG_FUNCTIONS) <= names
    assert {ROOT / p for p in LONG_MODULES} <= set(files().values())


# --- one writer per record --------------------------------------------------------------------

# A table is written by one area only: the area whose tables.py defines it, or the one named
# here, with the reason it is defined elsewhere.
WRITTEN_ELSEWHERE = {
    # the venue map and the sessions are the catalog's to read; creating a session copies the
    # map into its seat configuration, and a seat-map import updates the sessions that follow
    # the map, so both are written by the inventory
    "seats": "inventory",
    "sessions": "inventory",
    # every area may read the trusted keys (a new venue is sent them); the fleet changes them
    "signing_keys": "fleet",
    # the entries appliances pushed are the fleet's record (sales asks whether a ticket was
    # admitted); they are received by the entries push of ops, which counts them as it stores
    "entries": "ops",
}
WRITES = ("insert", "update", "delete")


def _hub_tables() -> dict[str, str]:
    """Every hub table's Python name and the area that defines it."""
    owners = {}
    for module in files():
        area = _area(module)
        if area is None or not (module.endswith(".tables") or area == "core"):
            continue
        for node in ast.walk(tree(module)):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "attr", None) == "Table"):
                owners[node.targets[0].id] = area
    return owners


def _written_tables(module: str, tables: set[str]) -> set[str]:
    """Tables the module writes: ``t.insert()``, ``sa.update(t)``, ``postgresql.insert(t)``,
    and helpers named for a write that are handed the table."""
    imported = {}
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cloud"):
            imported |= {a.asname or a.name: a.name for a in node.names if a.name in tables}
    if module.endswith(".tables") or _area(module) == "core":
        imported |= {t: t for t in tables}
    written = set()
    for node in ast.walk(tree(module)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if not any(w in name for w in WRITES):
            continue
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id in imported and name in WRITES:
            written.add(imported[func.value.id])
        written |= {imported[a.id] for a in node.args[:2]
                    if isinstance(a, ast.Name) and a.id in imported}
    return written


def test_each_hub_table_has_one_writing_area():
    owners = _hub_tables()
    assert {"tickets", "sessions", "change_log", "entries"} <= set(owners)
    writers: dict[str, set[str]] = {}
    for module in files():
        if _area(module) is not None:
            for table in _written_tables(module, set(owners)):
                writers.setdefault(table, set()).add(_area(module))
    expected = {t: {WRITTEN_ELSEWHERE.get(t, owners[t])} for t in writers}
    assert writers == expected
    assert set(WRITTEN_ELSEWHERE) <= set(owners)
