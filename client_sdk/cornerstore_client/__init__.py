"""cornerstore-client: the client every Cornerstore consumer uses. See the README."""

from cornerstore_client.aio import AsyncClient
from cornerstore_client.calls import Page
from cornerstore_client.client import Client
from cornerstore_client.errors import (
    BadRequest,
    ClientError,
    Conflict,
    CornerstoreError,
    FieldProblem,
    Forbidden,
    InternalError,
    NotFound,
    PayloadTooLarge,
    PrivacyBudgetExhausted,
    ServerError,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
    VerificationError,
)
from cornerstore_client.models import (
    AnalyticsAnswer,
    AnalyticsQuery,
    Budget,
    Consent,
    ConsentRequest,
    DataRange,
    Noise,
)
from cornerstore_client.retrying import Retries
from cornerstore_client.store import ConsentEnded, LocalStore
from cornerstore_client.verify import (
    verify_inclusion,
    verify_receipt,
    verify_webhook,
    webhook_key,
)

__all__ = [
    "AnalyticsAnswer",
    "AnalyticsQuery",
    "AsyncClient",
    "BadRequest",
    "Budget",
    "Client",
    "ClientError",
    "Conflict",
    "Consent",
    "ConsentEnded",
    "ConsentRequest",
    "CornerstoreError",
    "DataRange",
    "FieldProblem",
    "Forbidden",
    "InternalError",
    "LocalStore",
    "Noise",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "PrivacyBudgetExhausted",
    "Retries",
    "ServerError",
    "TooManyRequests",
    "Unauthenticated",
    "Unavailable",
    "ValidationFailed",
    "VerificationError",
    "verify_inclusion",
    "verify_receipt",
    "verify_webhook",
    "webhook_key",
]
