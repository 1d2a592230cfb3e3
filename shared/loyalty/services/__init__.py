"""Use cases: one function per thing a caller can do. They take a Principal and models."""
