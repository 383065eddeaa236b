"""Audit findings (docs/AUDIT.md) demonstrated as strict xfail tests: flip each when its finding is fixed."""
