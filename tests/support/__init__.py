"""Helpers shared by the integration, conformance and security tests (importable as ``support``)."""
