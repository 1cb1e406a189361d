VERSION = "0.1.0"  # the package version, kept importable without loading the rest
