"""Application layer: the OpenAI-compatible API schema, response rendering and the composition root
that wires adapters into domain services. Handlers call only this layer."""
