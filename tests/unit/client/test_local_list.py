"""The in-process client's list: a field selector on a kept field reaches the store as a hint."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from joblet.api.registry import Registry
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.store.memory import MemoryStore


class SpiedStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.kept_values: list[str | None] = []

    def list(self, *args: Any, **kwargs: Any) -> Any:
        self.kept_values.append(args[4] if len(args) > 4 else kwargs.get("kept_value"))
        return super().list(*args, **kwargs)

    def list_page(self, *args: Any, **kwargs: Any) -> Any:
        self.kept_values.append(args[5] if len(args) > 5 else kwargs.get("kept_value"))
        return super().list_page(*args, **kwargs)


def event(name: str, involved: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "reason": "Started", "type": "Normal",
            "involvedObject": {"kind": "Pod", "name": involved, "namespace": "default", "uid": uid}}


CASES = {
    "kubectl describe's selector": ("involvedObject.name=p,involvedObject.namespace=default,involvedObject.uid=u1",
                                    "p", ["p.1", "p.2"]),
    "name alone": ("involvedObject.name=p", "p", ["p.1", "p.2", "p.3"]),
    "double equals": ("involvedObject.name==q", "q", ["q.1"]),
    "not equal gives no hint": ("involvedObject.name!=p", None, ["q.1"]),
    "another field gives no hint": ("involvedObject.uid=u2", None, ["p.3"]),
}


@pytest.mark.parametrize("limit", [None, 500], ids=["whole", "limit-500"])  # kubectl 1.32+ describes with limit=500
@pytest.mark.parametrize(("selector", "hint", "expected"), CASES.values(), ids=CASES.keys())
def test_field_selected_events(selector: str, hint: str | None, expected: list[str], limit: int | None) -> None:
    store = SpiedStore()
    registry = Registry(store, FakeClock())
    registry.create("namespaces", {"metadata": {"name": "default"}})
    client = LocalClient(registry)

    async def body() -> list[str]:
        for name, involved, uid in [("p.1", "p", "u1"), ("p.2", "p", "u1"), ("p.3", "p", "u2"), ("q.1", "q", "u3")]:
            await client.create("events", event(name, involved, uid), "default")
        store.kept_values.clear()
        listed = await client.list("events", "default", None, selector, limit=limit)
        assert listed.continue_token == ""
        return [e["metadata"]["name"] for e in listed.items]

    assert asyncio.run(body()) == expected
    assert store.kept_values == [hint]
