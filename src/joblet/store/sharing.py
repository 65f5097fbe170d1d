"""Equal values shared between the objects a store keeps: strings and whole sub-objects.

Why: the index keeps every object until it is deleted, and a Job's finished pods and their
Events stay for its whole life: 100,000 retained pods must fit in well under a gigabyte. Each
JSON decode makes fresh copies of values that repeat across objects. Strings repeat (namespace,
image, timestamps of the same second, the Job's uid in every pod's labels and owner reference);
so do whole sub-objects: every pod of a Job carries the same owner reference, container env,
projected service-account volume source, conditions written in the same second... A dict of
a few keys costs 200-700 bytes in CPython, so a finished pod decoded afresh took ~13 KB,
~9.7 KB with its strings shared and ~5.5 KB with its sub-objects shared as well.

:class:`SharedValues` replaces, in place, every string value (up to :data:`SHARE_MAX_CHARS`
characters) by the interned equal string, and every dict or list below the object's top level
and its ``metadata`` by an equal one it has seen before (hash-consing, bottom up: a node's key
is its keys and its values, a container value by the identity of its shared copy). It remembers
the :data:`SHARED_NODES_MAX` nodes seen most recently, so it holds a bounded amount and keeps
nothing else alive (an interned string is freed with its last reference, CPython 3.10+).

Replacing a value by an equal one is invisible to every reader: objects handed out by a store
are never mutated (see :mod:`joblet.store.interface`), and the key of a node keeps the order of
its keys, so an object still encodes to the same JSON. The top-level dict and its ``metadata``
are never shared: they are the object's own (the store writes the resourceVersion into them).
Scalars are told apart by type as well as value (``True``, ``1`` and ``1.0`` are equal in
Python, not in JSON).
"""

from __future__ import annotations

import sys
from typing import Any

from joblet.store.interface import Obj

#: longer string values are left alone: hashing them costs more than sharing them saves
SHARE_MAX_CHARS = 256
#: the distinct sub-objects remembered, the least recently seen forgotten first (a bound on the
#: table, not on sharing: a forgotten node stays shared by every object that holds it)
SHARED_NODES_MAX = 4096
#: deeper nodes are left as they are (nor are their strings shared): no object can exhaust the stack
SHARE_MAX_DEPTH = 32

_LIST = object()  # marks a list's key apart from a dict's


class SharedValues:
    """The table of shared sub-objects of one store; :meth:`share` is called with its lock held."""

    def __init__(self, max_nodes: int = SHARED_NODES_MAX) -> None:
        self.max_nodes = max_nodes
        self._nodes: dict[tuple[Any, ...], Any] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def clear(self) -> None:
        """Forget every remembered node (they stay shared by the objects that hold them)."""
        self._nodes.clear()

    def share(self, obj: Obj, old: Obj | None = None) -> None:
        """Share, in place, the values of ``obj`` (a top-level object) with equal ones seen before.
        A top-level value that is the very object ``old`` (the version ``obj`` replaces) holds was
        shared already and is kept as it is (a pod's spec on each of its status writes)."""
        for k, v in obj.items():
            t = type(v)
            if t is str:
                if len(v) <= SHARE_MAX_CHARS:
                    obj[k] = sys.intern(v)
            elif t is dict or t is list:
                if old is not None and v is old.get(k):
                    continue
                if k == "metadata" and t is dict:
                    self._share_children(v, 1)
                else:
                    obj[k] = self._node(v, 1)

    def _share_children(self, node: Any, depth: int) -> tuple[Any, ...]:
        """Intern the strings of ``node`` and replace its dict and list values by their shared
        copies (in place); return what identifies its content, given that its children are shared."""
        intern = sys.intern
        parts: list[Any] = []
        append = parts.append
        if type(node) is dict:
            for k, v in node.items():
                t = type(v)
                if t is str:
                    if len(v) <= SHARE_MAX_CHARS:
                        v = node[k] = intern(v)
                    append(k)
                    append(v)
                elif t is dict or t is list:
                    v = node[k] = self._node(v, depth + 1)
                    append(k)
                    append(id(v))
                else:
                    append(k)
                    append((t, repr(v)) if t is float else (t, v))  # -0.0 == 0.0, not in JSON
        else:
            append(_LIST)
            for i, v in enumerate(node):
                t = type(v)
                if t is str:
                    if len(v) <= SHARE_MAX_CHARS:
                        v = node[i] = intern(v)
                    append(v)
                elif t is dict or t is list:
                    v = node[i] = self._node(v, depth + 1)
                    append(id(v))
                else:
                    append((t, repr(v)) if t is float else (t, v))
        return tuple(parts)

    def _node(self, node: Any, depth: int) -> Any:
        """The shared node equal to ``node`` (``node`` itself, remembered, when none is known).

        A key names its container children by ``id()``: valid for as long as the entry lives,
        since the remembered node holds those children."""
        if depth > SHARE_MAX_DEPTH:
            return node
        key = self._share_children(node, depth)
        nodes = self._nodes
        shared = nodes.pop(key, None)
        if shared is None:
            shared = node
            if len(nodes) >= self.max_nodes:
                del nodes[next(iter(nodes))]
        nodes[key] = shared  # (re)inserted last: the most recently seen
        return shared

