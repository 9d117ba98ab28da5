"""DynamoDB adapters: item transformations and thin table clients."""
