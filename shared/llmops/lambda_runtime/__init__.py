"""Our Lambda runtime loop: the Runtime API's streaming response mode for the managed Python runtime.

Lambda's Python runtime interface client cannot stream a response, and API Gateway's STREAM
integration needs one. `loop` talks to the documented Runtime API itself (started by the
`llmops-runtime` wrapper through `AWS_LAMBDA_EXEC_WRAPPER`) and runs the same handlers; a handler
that returns a `StreamingResponse` has its body written chunk by chunk as it is produced.
Standard library only: it runs before, and independently of, anything else in the layer.
"""

from __future__ import annotations

from llmops.lambda_runtime.response import HTTP_INTEGRATION_RESPONSE, PRELUDE_DELIMITER, StreamingResponse

__all__ = ["HTTP_INTEGRATION_RESPONSE", "PRELUDE_DELIMITER", "StreamingResponse"]
