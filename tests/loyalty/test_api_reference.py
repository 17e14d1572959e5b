"""The API reference in the repository (docs/api.md) and the served schema name the same
operations: a path added to one and not the other fails here."""

import re
from pathlib import Path

from drf_spectacular.generators import SchemaGenerator

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
OPERATION = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^`\s]*)`")


def _schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_every_documented_operation_is_in_the_schema():
    documented = set(OPERATION.findall(REFERENCE.read_text()))
    assert documented, "the reference names no operation"
    assert documented - _schema_operations() == set()


def test_every_schema_path_is_documented():
    documented_paths = {path for _, path in OPERATION.findall(REFERENCE.read_text())}
    schema_paths = {path for _, path in _schema_operations()}
    assert schema_paths - documented_paths == set()
