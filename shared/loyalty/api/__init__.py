"""The HTTP edge shared by the API handlers: the resolver, auth, error mapping, idempotency, parameters."""
