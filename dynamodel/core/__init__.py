"""Pure core: codec, key templates, expressions, flows, errors, retry policy.

No I/O, no models, no clocks or globals; imports nothing else from dynamodel.
"""
