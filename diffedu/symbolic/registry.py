"""The registry: every pair and waiver that the derivation modules declare, collected once.

Each derivation module declares, next to its derivations, `PAIRS` (a tuple of `Pair`) for the
numeric coefficient functions it derives and `WAIVERS` ({qualified name: reason}) for the public
functions of the numeric modules that are not closed forms.  This module only concatenates them;
the tables are immutable.  To pair a new function, add a `Pair` to the PAIRS of the module that
derives it; to cover a new numeric module, add it to NUMERIC_MODULES below.
Imports: importlib, inspect, types, and the derivation modules of diffedu.symbolic.
"""
from __future__ import annotations

import importlib
import inspect
import types

from . import ddim, forward, guidance, param, posterior, precond, processes, steps, unified
from .pairing import Pair, verify

__all__ = ["NUMERIC_MODULES", "PAIRS", "WAIVERS", "PROCESS_PAIRS", "METHOD_PAIRS", "Pair", "verify",
           "public_functions", "missing_pairs"]

# the modules whose public functions each need a pair or a waiver
NUMERIC_MODULES = ("diffedu.schedules", "diffedu.forward", "diffedu.posterior", "diffedu.param", "diffedu.losses",
                   "diffedu.precond", "diffedu.samplers.edm", "diffedu.samplers.estimate_correct", "diffedu.guidance")

_DECLARING = (forward, posterior, ddim, param, precond, steps, unified, guidance)


def _merged(tables) -> types.MappingProxyType:
    """One read-only mapping from several; a name waived twice is an error, not a silent overwrite."""
    merged: dict[str, str] = {}
    for table in tables:
        twice = merged.keys() & table.keys()
        if twice:
            raise ValueError(f"waived in two derivation modules: {sorted(twice)}")
        merged.update(table)
    return types.MappingProxyType(merged)


PAIRS: tuple[Pair, ...] = tuple(pair for module in _DECLARING for pair in module.PAIRS)
WAIVERS = _merged(module.WAIVERS for module in _DECLARING)
# the methods of the diffedu.processes classes, called through an adapter (Pair.name names the method)
PROCESS_PAIRS: tuple[Pair, ...] = processes.METHOD_PAIRS


def METHOD_PAIRS() -> tuple[Pair, ...]:
    """The Process method pairs, PROCESS_PAIRS (a function under the name its callers use)."""
    return PROCESS_PAIRS


def public_functions(module_name: str) -> list[str]:
    """Qualified names of the public functions defined in a module."""
    mod = importlib.import_module(module_name)
    return [f"{module_name}.{name}" for name, fn in inspect.getmembers(mod, inspect.isfunction)
            if fn.__module__ == module_name and not name.startswith("_")]


def missing_pairs() -> list[str]:
    """Public functions of NUMERIC_MODULES with neither a pair nor a waiver."""
    paired = {p.name for p in PAIRS}
    return [f for m in NUMERIC_MODULES for f in public_functions(m) if f not in paired and f not in WAIVERS]
