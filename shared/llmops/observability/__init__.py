"""Observability: the metric catalogue (`metrics`, pure, shared with the CDK app) and the Powertools
EMF emitter (`emit`). Import the submodules; this package imports nothing so CDK stays light."""
