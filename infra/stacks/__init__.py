"""Stacks: they only wire capability constructs together."""

from infra.stacks.gateway_stack import GatewayStack

__all__ = ["GatewayStack"]
