"""``joblet run`` without a server runs the whole control plane in its own process: that process
paces its garbage collector as ``joblet server`` does (its heap grows with the Job the same way);
a read-only command's plane (``get``, ``logs``) does not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from joblet.cli.connect import Choice, connect
from joblet.config import ControlPlaneConfig


def pacers() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name() == "gc-pacing" and not t.done()]


@pytest.mark.parametrize(("controllers", "paced"), [(True, ["gc-pacing"]), (False, [])], ids=["run", "read"])
def test_the_embedded_control_plane_paces_gc_when_it_runs_controllers(
        tmp_path: Path, controllers: bool, paced: list[str]) -> None:
    config = ControlPlaneConfig(data_dir=tmp_path / "data", port=0)

    async def body() -> None:
        async with connect(None, config, controllers=controllers, choice=Choice(None, config.data_dir)):
            assert pacers() == paced
        assert pacers() == []

    asyncio.run(body())
