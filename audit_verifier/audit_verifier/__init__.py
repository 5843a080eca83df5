"""Offline verification of Cornerstore's audit log, for auditors.

This package imports only the standard library and ``cryptography``: an
auditor can install and run it with no server, database or hub code
(``python -m audit_verifier --help``).

* :mod:`audit_verifier.merkle`: the RFC 9162 Merkle tree, its proofs and their checks;
* :mod:`audit_verifier.note`: C2SP signed notes and tlog checkpoints (Ed25519);
* :mod:`audit_verifier.chain`: the canonical bytes of an entry and the local hash chain;
* :mod:`audit_verifier.verify`: an export against a checkpoint, consistency and inclusion.
"""
