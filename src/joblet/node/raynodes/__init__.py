"""Pods on a Ray cluster: one virtual node agent per alive Ray node (``--ray-address``).

Why a package of its own: Ray is an optional, heavy dependency (``pip install joblet[ray]``);
nothing outside this package imports ``ray``, and the hook in the control plane is one call.
``worker`` runs on the Ray nodes, ``runtime`` is the agent's Runtime over Ray tasks, ``nodes``
mirrors Ray's nodes as Nodes and supervises their agents.
"""
