"""A FastAPI shop on one DynamoDB table: see ``app.py`` (routes), ``models.py`` (the design),
``deps.py`` (lifespan and injection), ``errors.py`` (HTTP status mapping)."""
