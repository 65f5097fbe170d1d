"""Harness for the upstream-derived Job/CronJob conformance catalog (vendored in tests/conformance/catalog).

Why a package: the catalog format (README.md beside the YAML files) is generic — triggers,
verbs and expectation kinds — so the pure parts (catalog loading, matching, trigger and
expectation evaluation over an observed timeline) live apart from the thin I/O layer that
talks to a real server through the official ``kubernetes`` client.
"""
