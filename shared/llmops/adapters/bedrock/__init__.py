"""Amazon Bedrock (Converse API) provider adapter.

`transformation` is the pure request/response/error mapping; `client.BedrockConverseProvider` is the
thin shell that calls boto3. Nothing is imported here so the pure module stays cheap to import.
"""

__all__: list[str] = []
