"""Amazon SageMaker real-time endpoint (InvokeEndpoint) provider adapter.

`transformation` maps requests and responses for the OpenAI-messages and TGI payload dialects,
`chat_templates` renders prompts for TGI, `client.SageMakerEndpointProvider` calls boto3. Nothing is
imported here so the pure modules stay cheap to import.
"""

__all__: list[str] = []
