"""Governance: who acts (identities and roles) and the hash-chained audit log."""

from shipyard.governance.audit import ChainCheck, audit_events, audit_head, verify_audit_log
from shipyard.governance.identity import Identity, current_identity, require_role
from shipyard.store.users_store import ROLES

__all__ = [
    "ROLES",
    "ChainCheck",
    "Identity",
    "audit_events",
    "audit_head",
    "current_identity",
    "require_role",
    "verify_audit_log",
]
