"""Every endpoint of the app, and the permit each declares, read without starting the app."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, get_type_hints

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from cornerstore.access import Permit
from hub.app import ROUTERS
from web_console.site import ROUTERS as PAGE_ROUTERS


def permits(dependant: Dependant) -> list[Callable[..., Any]]:
    """The dependencies, at any depth, that hand the endpoint a :class:`Permit`."""
    found = []
    for dependency in dependant.dependencies:
        call = dependency.call
        target = call if inspect.isfunction(call) else type(call).__call__
        if call is not None and get_type_hints(target).get("return") is Permit:
            found.append(call)
        found.extend(permits(dependency))
    return found


def endpoints() -> Iterator[tuple[str, str, APIRoute]]:
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute), "the app includes routers of endpoints only"
            for method in sorted(route.methods or ()):
                yield method, route.path, route


def pages() -> Iterator[tuple[str, str, APIRoute]]:
    """The web console's routes: pages, and the forms they post."""
    for router in PAGE_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute), "the console includes routers of routes only"
            for method in sorted(route.methods or ()):
                yield method, route.path, route
