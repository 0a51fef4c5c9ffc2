import pytest

from shipyard.core import errors
from shipyard.core.errors import (
    FilterSyntaxError,
    InvalidInputError,
    NotFoundError,
    ShipyardError,
    error_from_code,
)


def test_every_error_has_a_unique_code_and_a_4xx_or_5xx_status() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, ShipyardError)
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(400 <= c.http_status < 600 for c in classes)


def test_invalid_input_is_also_a_value_error() -> None:
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(FilterSyntaxError, InvalidInputError)


@pytest.mark.parametrize("cls", [NotFoundError, FilterSyntaxError, InvalidInputError])
def test_errors_survive_a_round_trip_through_their_code(cls: type[ShipyardError]) -> None:
    original = cls("boom", details={"position": 3})
    body = original.to_dict()["error"]
    again = error_from_code(body["code"], body["message"], body["details"])
    assert type(again) is cls
    assert again.message == "boom"
    assert again.details == {"position": 3}


def test_unknown_code_gives_the_root_class() -> None:
    assert type(error_from_code("NOPE", "x")) is ShipyardError
