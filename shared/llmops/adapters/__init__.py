"""Adapters: AWS and model backends behind the domain ports."""
