"""Networks: loading checkpoints into torch modules, choosing the device, and the per-run
cache of loaded networks."""

from facefix_cli.networks.lean import defer_spandrel_registry

# Before anything below imports spandrel: its registry of every architecture loads only when
# a checkpoint of unknown architecture needs it (`networks.lean`).
defer_spandrel_registry()
