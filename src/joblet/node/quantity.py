"""Kubernetes resource quantities (``500m``, ``64Mi``, ``1e3``) as numbers.

Why: limits, requests, node capacity, ``sizeLimit`` and ``resourceFieldRef`` divisors all use
the same notation; one parser keeps them consistent.
"""

from __future__ import annotations

import re

_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 1e-3}


def parse_quantity(value: object) -> float:
    """A Kubernetes resource quantity (``500m``, ``64Mi``, ``1e3``, ``2``) as a number."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if m is None:
        return float(text)
    number, suffix = m.groups()
    if suffix.startswith(("e", "E")) and suffix[1:].lstrip("+-").isdigit():
        return float(text)
    return float(number) * _SUFFIX[suffix]
