"""Pydantic request and response models, one module per capability (docs/design.md#http-api)."""
