"""I/O: connections, the executors that drive flows, transports and middleware.

Transports: boto3, aioboto3, lean. Middleware: DAX routing, local read cache, capacity.
Imports only the core: executors know requests, never models.
"""
