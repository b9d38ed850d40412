"""What every part of a problem file's schema shares: strict models (an unknown field is an
error) and the one error a malformed problem file raises."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
)

from neuroptimus.optimization.errors import UserError


class SpecError(UserError, ValueError):
    """A problem file is malformed; the message is one line naming file, field and fix."""


class Strict(BaseModel):
    """A part of the problem file: unknown fields are refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
