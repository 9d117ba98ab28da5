"""SQS adapters: the audit and quota-settlement dead-letter queue.

`dead_letter_transformation` is the pure message mapping; `dead_letter_queue` the thin client.
"""

__all__: list[str] = []
