"""Powertools logger and metrics shared by every function (service name from env)."""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
