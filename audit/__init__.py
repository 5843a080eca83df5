"""The audit log: every access decision, consent change and ingestion batch.

Entries form a hash chain (:mod:`audit_verifier.chain`), so editing, deleting or
reordering a stored entry is detected by ``cornerstore audit verify``.
"""
