"""What the console's pages share when they read a form or a query, and check a shop."""

from __future__ import annotations

import uuid
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from cornerstore.access import Permit
from cornerstore.errors import FieldError, NotFound, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)


def own_shop(permit: Permit, shop_id: uuid.UUID) -> None:
    """The portal is the shop's own: a consumer's consent, or an admin's reach, opens no page."""
    if shop_id not in permit.caller.shop_ids:
        raise NotFound()


def invalid(exc: ValidationError, location: str, detail: str) -> ValidationFailed:
    """A 422 naming each offending field as ``location.field``, like the API's."""
    fields = [
        FieldError(field=".".join([location, *map(str, e["loc"])]), reason=e["msg"])
        for e in exc.errors()
    ]
    return ValidationFailed(detail, fields)


def query_filters(model: type[Model], request: Request) -> Model:
    """Filters from a plain GET form: an empty field means any."""
    asked = {
        name: value
        for name, value in request.query_params.items()
        if name in model.model_fields and value
    }
    try:
        return model.model_validate(asked)
    except ValidationError as exc:
        raise invalid(exc, "query", "a filter is not valid") from None
