"""`--runtime` and `--store` take their choices from the runtime and store-backend tables: a row is
usable from the CLI at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import cli_env, job_manifest, joblet


def test_run_with_the_fake_runtime_completes_a_job_without_a_process(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(job_manifest("fake-hello", "echo hello from the table; exit 0"))
    env = cli_env(tmp_path)
    done = joblet(env, "run", "--runtime", "fake", "--data-dir", str(tmp_path / "d"), "-f", str(manifest))
    assert done.returncode == 0, done.stderr
    assert "hello from the table" in done.stdout


def test_an_unknown_runtime_is_refused_with_the_table(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(job_manifest("x", "true"))
    done = joblet(cli_env(tmp_path), "run", "--runtime", "nosuch", "--data-dir", str(tmp_path / "d"), "-f",
                  str(manifest))
    assert done.returncode == 2
    assert "--runtime must be one of process, podman, fake, ray, not 'nosuch'" in done.stderr


def test_the_ray_runtime_is_reached_through_ray_address_not_runtime(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(job_manifest("x", "true"))
    done = joblet(cli_env(tmp_path), "run", "--runtime", "ray", "--data-dir", str(tmp_path / "d"), "-f",
                  str(manifest))
    assert done.returncode == 2
    assert "--runtime ray:" in done.stderr and "--ray-address" in done.stderr


@pytest.mark.parametrize("store", ["memory://", "sqlite:///{tmp}/elsewhere/objects.db"], ids=["memory", "sqlite-path"])
def test_run_with_a_store_url_keeps_objects_where_the_url_says(tmp_path: Path, store: str) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(job_manifest("stored", "echo stored"))
    url = store.format(tmp=tmp_path)
    done = joblet(cli_env(tmp_path), "run", "--runtime", "fake", "--store", url, "--data-dir", str(tmp_path / "d"),
                  "-f", str(manifest))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "d" / "joblet.db").exists()
    assert (tmp_path / "elsewhere" / "objects.db").exists() == url.startswith("sqlite")


@pytest.mark.parametrize(("store", "says"), [("mysql://db/x", "the scheme must be one of memory, sqlite, postgresql"),
                                            ("sqlite://", "sqlite:// needs a file"),
                                            ("/tmp/x.db", "--store must be a URL")])
def test_a_store_url_no_backend_takes_is_a_usage_error(tmp_path: Path, store: str, says: str) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(job_manifest("x", "true"))
    done = joblet(cli_env(tmp_path), "run", "--store", store, "--data-dir", str(tmp_path / "d"), "-f", str(manifest))
    assert done.returncode == 2
    assert says in done.stderr
