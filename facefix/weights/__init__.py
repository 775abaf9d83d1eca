"""Model weight files: the registry of known files, and getting them onto disk verified."""
