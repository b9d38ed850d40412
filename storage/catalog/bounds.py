"""What a request may ask of the catalog: integers that fit its columns, text that both
databases store (no NUL, no lone surrogates) of a bounded length, JSON of a bounded depth, and
the one parser of run filters the API and the pages share. Anything else is refused with one
sentence (``InvalidInput``), before it reaches the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from neuroptimus.storage.catalog.db.listing import RunFilter
from neuroptimus.storage.catalog.errors import InvalidInput

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1  # counts (evaluations, budgets, generations) are 32-bit columns

MAX_JSON_DEPTH = 64  # a run's metadata nests a handful of levels
MAX_FILTER_TEXT = 200  # a name, key or handle in a filter
MAX_QUERY_WORDS = 20  # words of ``q``: each is a LIKE over three columns
_WHOLE = re.compile(r"^[+-]?[0-9]{1,25}$")  # ASCII digits only (int() takes "٣" and "1_0")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL character, or a lone surrogate that no UTF-8
    encoder takes), or None."""
    if "\x00" in text:
        return "holds a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (text that is not Unicode)"
    return None


def json_problem(data: Any, limit_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Where and why parsed JSON cannot be stored: nested deeper than ``limit_depth``, an
    integer beyond 64 bits, a NaN or infinite number, a key or string ``text_problem`` refuses;
    None when all is well. Walks without recursion (a deep document cannot exhaust the stack)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        where = path or "the top"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                return f"{where} is an integer beyond 64 bits"
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return f"{where} is a NaN or infinite number"
        elif isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return f"{where} {problem}"
        elif isinstance(value, (dict, list)):
            if depth >= limit_depth:
                return f"{where} is nested more than {limit_depth} levels deep"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        return f"a key in {where} {problem}"
                    inner = f"{path}.{key}" if path else key
                else:
                    inner = f"{path}[{key}]"
                stack.append((item, inner, depth + 1))
    return None


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def _few_words(text: str) -> str:
    if len(text.split()) > MAX_QUERY_WORDS:
        raise ValueError(f"give at most {MAX_QUERY_WORDS} words")
    return text


StorableText = Annotated[str, AfterValidator(_storable)]
FilterText = Annotated[StorableText, Field(max_length=MAX_FILTER_TEXT)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Seed = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


class RunQuery(BaseModel):
    """The run filters of ``/api/v1/runs`` and of the runs page, with one rule for both: blank
    means not given, numbers fit the columns they filter, text is short and storable."""

    model_config = ConfigDict(str_strip_whitespace=True)

    use_case: FilterText | None = Field(None, description="a use case's slug")
    algorithm: FilterText | None = Field(None, description="an algorithm key (cmaes)")
    package: FilterText | None = None
    uploader: FilterText | None = Field(None, description="an uploader's handle")
    seed: Seed | None = None
    min_budget: Count | None = Field(None, description="runs given at least this many evaluations")
    max_budget: Count | None = Field(None, description="runs given at most this many evaluations")
    verified: bool | None = None
    state: Literal["complete", "partial"] | None = None
    q: Annotated[FilterText, AfterValidator(_few_words)] | None = Field(
        None, description=f"words (at most {MAX_QUERY_WORDS}) in a run's names"
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_missing(cls, data: Any) -> Any:
        # an HTML form sends its empty fields as ``seed=``
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    def run_filter(self) -> RunFilter:
        return RunFilter(**self.model_dump(include=set(RunQuery.model_fields)))


def run_filter(params: Mapping[str, Any]) -> RunFilter:
    """The run filter in ``params`` (a query string's first values); ``InvalidInput`` with one
    sentence naming the parameter when one cannot be read."""
    names = RunQuery.model_fields
    try:
        return RunQuery.model_validate({k: v for k, v in params.items() if k in names}).run_filter()
    except ValidationError as error:
        raise InvalidInput(validation_sentence(error)) from None


def validation_sentence(error: ValidationError, prefix: str = "") -> str:
    """The first of pydantic's errors as one sentence: where, and what."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the request"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{prefix}{where}: {message}."


def whole_number(text: str | None, name: str, minimum: int, maximum: int = INT64_MAX) -> int | None:
    """``text`` read as an integer in [minimum, maximum] (None when blank)."""
    text = (text or "").strip()
    if not text:
        return None
    if not _WHOLE.match(text):
        raise InvalidInput(f"{name} must be a whole number, not {text[:40]!r}")
    number = int(text)
    if not minimum <= number <= maximum:
        raise InvalidInput(f"{name} must be between {minimum} and {maximum}")
    return number
