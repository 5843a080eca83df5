"""Key management: the master-key providers, per-shop key-encryption keys and data keys.

The hierarchy, from the top:

* **master keys** live in a key provider (a local key file, or an HSM through
  PKCS#11). The database records which one is active.
* **shop key-encryption keys** (one per shop) live in the same provider: in a
  key store beside the master key file, or as objects in the HSM. Destroying
  one is how a shop's data is erased for good.
* **data keys** (per shop, versioned) seal the shop's values. They are stored
  in the database wrapped twice: first by the shop's key-encryption key, then
  by the active master key. Rotating the master key re-wraps only the outer
  layer; erasing a shop destroys the inner one, so neither a database copy
  nor the master key alone can open the shop's data again.
"""
