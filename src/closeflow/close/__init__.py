"""The Close API client: credentials, rate budget, retries, pagination and typed errors.

``CloseClient`` is the one way closeflow talks to Close (or to the emulator, which stands where
Close stands).
"""

from closeflow._endpoint_groups import endpoint_group
from closeflow.close._auth import ApiKey, Credentials
from closeflow.close._client import DEFAULT_BASE_URL, SEARCH_LAG, CloseClient
from closeflow.close._credentials import (
    ApiKeyProfile,
    Connection,
    CredentialsFile,
    OAuthProfile,
    resolve_connection,
)
from closeflow.close._custom_fields import (
    CustomField,
    CustomFieldRegistry,
    CustomFieldValueError,
    UnknownCustomField,
    value_key,
)
from closeflow.close._errors import (
    CloseError,
    ConfigError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationError,
)
from closeflow.close._filter_compile import compile_query, search_body
from closeflow.close._filters import And, Condition, Filter, FilterError, Not, Or
from closeflow.close._find import find
from closeflow.close._oauth import OAuthApp, OAuthCredentials, OAuthToken, revoke
from closeflow.close._oauth_login import run_authorization_flow
from closeflow.close._ratelimit import (
    BudgetSnapshot,
    BudgetStats,
    RateBudget,
    RateBudgets,
    RateLimitState,
    parse_rate_limit,
)
from closeflow.close._retry import RetryPolicy, is_retryable
from closeflow.close._values import utc_text
from closeflow.close._where import WhereSyntaxError, parse_where, to_text

__all__ = [
    "DEFAULT_BASE_URL",
    "SEARCH_LAG",
    "And",
    "ApiKey",
    "ApiKeyProfile",
    "BudgetSnapshot",
    "BudgetStats",
    "CloseClient",
    "CloseError",
    "Condition",
    "ConfigError",
    "Connection",
    "Credentials",
    "CredentialsFile",
    "CustomField",
    "CustomFieldRegistry",
    "CustomFieldValueError",
    "Filter",
    "FilterError",
    "Forbidden",
    "Not",
    "NotFound",
    "OAuthApp",
    "OAuthCredentials",
    "OAuthProfile",
    "OAuthToken",
    "Or",
    "RateBudget",
    "RateBudgets",
    "RateLimitState",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "UnknownCustomField",
    "ValidationError",
    "WhereSyntaxError",
    "compile_query",
    "endpoint_group",
    "find",
    "is_retryable",
    "parse_rate_limit",
    "parse_where",
    "resolve_connection",
    "revoke",
    "run_authorization_flow",
    "search_body",
    "to_text",
    "utc_text",
    "value_key",
]
