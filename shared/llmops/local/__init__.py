"""The local stack: moto, model runtime emulators and an API Gateway front door, no AWS account."""
