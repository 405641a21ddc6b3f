"""Deprecated (removed in cfx 0.3): the objective's terms are :mod:`cfx.terms`.

Every name here is read from :mod:`cfx.terms`, with a :class:`DeprecationWarning`.
"""

from cfx import _deprecated


def __getattr__(name):
    import cfx.terms

    if name.startswith("__"):
        raise AttributeError(name)
    value = getattr(cfx.terms, name)  # AttributeError for a name cfx.terms lacks
    _deprecated.warn(f"cfx.losses.{name}", f"use cfx.terms.{name} (the objective's pieces are terms)")
    return value
