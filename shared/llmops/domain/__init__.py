"""Pure domain logic: no AWS SDK, no Powertools, no I/O. Ports are Protocols in `ports`."""
