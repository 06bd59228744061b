"""The path parameter for a row id: up to 18 digits, so it always fits the 64-bit integer
columns of PostgreSQL and SQLite. Starlette's `int` takes any number of digits, and a
longer one reached the database as an overflow (a 500) where a missing row is a 404."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

PATTERN = "^[0-9]{1,18}$"


class RowId(Convertor[int]):
    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("row_id", RowId())
