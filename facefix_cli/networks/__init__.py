"""Networks: loading checkpoints into torch modules, choosing the device, and the per-run
cache of loaded networks."""
