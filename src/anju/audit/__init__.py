"""审计日志 — the append-only, hash-chained audit log.

Changes to audited tables are recorded by a session hook (:mod:`anju.audit.changes`),
explicit events (sign-ins, reveals, exports) by :func:`anju.audit.service.record`;
``anju audit verify`` (:mod:`anju.audit.verify`) checks the chain.
"""

from anju.audit.changes import install

__all__ = ["install"]
