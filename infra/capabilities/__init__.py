"""One construct per capability. Later capabilities add a module here and one line in a stack."""

from infra.capabilities.alerting import Alerting
from infra.capabilities.gateway_api import GatewayApi
from infra.capabilities.key_pepper import KeyPepper
from infra.capabilities.lambda_layer import SharedLayer, shared_layer_build
from infra.capabilities.python_function import FunctionSpec, PythonFunction
from infra.capabilities.route_seed import RouteSeed
from infra.capabilities.tables import TableAccess, Tables

__all__ = [
    "Alerting",
    "FunctionSpec",
    "GatewayApi",
    "KeyPepper",
    "PythonFunction",
    "RouteSeed",
    "SharedLayer",
    "TableAccess",
    "Tables",
    "shared_layer_build",
]
