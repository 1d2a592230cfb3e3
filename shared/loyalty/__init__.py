"""Loyalty membership rules layer.

Shipped as a Lambda layer (/opt/python/loyalty) and imported the same way by pytest
(`pythonpath = ["shared"]`). Domain modules (lifecycle, cards, models, normalize, auth)
do no I/O; `repository/` is the only code that talks to DynamoDB; `services/` holds the
use cases; `http` adapts them to API Gateway for the thin handlers.
"""
