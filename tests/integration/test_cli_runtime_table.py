"""`--runtime` takes its choices from the runtime table: a row is usable from the CLI at once."""

from __future__ import annotations

from pathlib import Path

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
    assert "--runtime must be one of process, podman, fake, not 'nosuch'" in done.stderr
