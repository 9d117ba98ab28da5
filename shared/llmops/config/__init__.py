"""Single sources of truth shared by the runtime, the local stack and the CDK app."""
