"""Route modules import no other route module: what they share lives in `http.deps`
(the service, settings, metrics and model a route is handed), `http.replies` (json_reply)
and `http.errors`.

A route module is one whose `APIRouter` routes to its own functions; its imports are
read from its source, so a route module that borrowed another's `Service` or `Model`
again fails here. A control check shows the reader sees such an import.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

import bert_serving.server.http as http

PACKAGE = http.__name__


def http_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{PACKAGE}.{info.name}")
            for info in pkgutil.iter_modules(http.__path__)]


def defines_routes(module: ModuleType) -> bool:
    """Whether `module` holds an APIRouter whose endpoints it defines (app.py only
    imports the routers)."""
    return any(isinstance(route, APIRoute) and route.endpoint.__module__ == module.__name__
               for router in vars(module).values() if isinstance(router, APIRouter)
               for route in router.routes)


ROUTE_MODULES = sorted(m.__name__ for m in http_modules() if defines_routes(m))


def imported_modules(source: str, module: str) -> set[str]:
    """Every module `source` (the text of `module`) imports, relative names resolved;
    `from pkg import name` counts both `pkg` and `pkg.name` (name may be a module)."""
    package = module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def test_the_route_modules_are_found() -> None:
    assert {f"{PACKAGE}.{name}" for name in ("routes", "tei_routes", "classifier_routes",
                                             "cohere_routes")} <= set(ROUTE_MODULES)


def test_the_reader_sees_a_route_module_imported() -> None:
    source = "from .tei_routes import Model\nfrom . import routes\n"
    assert {f"{PACKAGE}.tei_routes", f"{PACKAGE}.routes"} <= imported_modules(
        source, f"{PACKAGE}.cohere_routes")


@pytest.mark.parametrize("module", ROUTE_MODULES)
def test_a_route_module_imports_no_other_route_module(module: str) -> None:
    source = Path(importlib.import_module(module).__file__ or "").read_text(encoding="utf-8")
    assert imported_modules(source, module) & (set(ROUTE_MODULES) - {module}) == set()
