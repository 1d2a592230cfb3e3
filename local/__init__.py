"""The local stack: template.yaml run on one machine over moto (not deployed)."""
