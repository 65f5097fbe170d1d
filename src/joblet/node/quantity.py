"""Kubernetes resource quantities (``500m``, ``64Mi``, ``1e3``) as the floats the node's
arithmetic uses (cgroup limits, capacity, ``resourceFieldRef`` divisors).

The parsing itself is the API's (:func:`joblet.api.validation.parse_quantity`), which
admission already applied to every quantity a pod carries.
"""

from __future__ import annotations

from joblet.api.validation import parse_quantity as parse_api_quantity


def parse_quantity(value: object) -> float:
    return float(parse_api_quantity(str(value).strip()))
