"""The CDK app for llmops-gateway: `app.py` entry point, one construct per capability, thin stacks."""

__all__: list[str] = []
