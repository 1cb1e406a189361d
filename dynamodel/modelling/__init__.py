"""Modelling: tables, model specs and serialisation, key rendering, paths, shards.

Imports the core and I/O (a Table creates and describes itself), never the operations.
"""
