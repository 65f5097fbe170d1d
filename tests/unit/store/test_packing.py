"""What the index keeps of an Event (packed JSON) decodes to exactly what was written."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from joblet.store.memory import _keeping, decoded, kept_header, packed

CASES: dict[str, Any] = {
    "a pod's Started Event": {
        "apiVersion": "v1", "kind": "Event", "count": 1, "type": "Normal", "reason": "Started",
        "message": "Started container c", "source": {"component": "kubelet", "host": "vm"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "scale-5-tbm5v", "namespace": "default",
                           "uid": "a29a9e67-1e6c-4c27-8ef5-7d55577cb2ab"},
        "metadata": {"name": "scale-5-tbm5v.18ef13ffa20a620010", "namespace": "default", "resourceVersion": "81"}},
    "nothing in common with the dictionary": {"k": ["ü", "✓", "\u0000", 1.5, -0.0, None, True, 2**60]},
    "longer than the 2 KiB window": {"message": "x" * 5000 + "".join(chr(0x400 + i % 200) for i in range(3000))},
    "empty": {},
}


@pytest.mark.parametrize("obj", CASES.values(), ids=CASES.keys())
def test_packed_json_decodes_to_the_object(obj: Any) -> None:
    data = orjson.dumps(obj)
    for value in ("", "scale-5-tbm5v", "ü✓", "x" * 5000, None):
        kept = packed(data, value)
        assert decoded(kept) == obj and decoded(kept) is not decoded(kept)


def test_an_event_packs_to_a_fraction_of_its_json() -> None:
    data = orjson.dumps(CASES["a pod's Started Event"])
    assert len(packed(data)) < len(data) / 2


def test_a_kept_value_selects_entries_without_unpacking_them() -> None:
    # Entries whose header keeps another value are passed over unread: here they are not even
    # valid packs, which unpacking would fail on.
    data = orjson.dumps(CASES["a pod's Started Event"])
    names = {"mine": packed(data, "p"), "longer": kept_header("pp") + b"junk", "shorter": kept_header("") + b"junk",
             "unkept": packed(data, "p" * 2000), "other": kept_header("q") + b"junk"}
    assert list(_keeping(names, "p")) == ["mine", "unkept"]
    assert kept_header("p" * 2000) == kept_header(None) != kept_header("")
