"""joblet: the Kubernetes Job system, in Python, without the cluster."""

__version__ = "0.1.0"
