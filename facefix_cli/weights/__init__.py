"""Model weight files, one module per job:

* registry: the table of known files (names, URLs, sizes, digests, licences) and `Registry`.
* store: the local weights folder (paths, states, verification, locks, installing a `.part`).
* sources: where each file can come from (mirrors, release URLs) and which sources went dead.
* transfer: moving bytes from HTTP or a mirror folder into a `.part`, checked, resumed, retried.
* download: `download` and `ensure_weights`, tying the others together for the CLI and `fix`.
"""
