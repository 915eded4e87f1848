"""schemathesis hooks for Herald's schema, shared by the test suite and the ``schemathesis run``
command line (``hooks`` in ``schemathesis.toml``).

OpenAPI 3.0 cannot constrain the keys of a map, so the schema states them in an extension,
``x-propertyNames`` (preferences are keyed by type key). This turns the extension into the
``patternProperties`` schemathesis understands, so it generates and checks keys as the API takes
them: valid data with type keys, invalid data with others.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def promote_property_names(node: Any) -> None:
    """``{"x-propertyNames": {"pattern": P}, "additionalProperties": S}`` becomes
    ``{"patternProperties": {P: S}, "additionalProperties": false}``, in place."""
    if isinstance(node, dict):
        names = node.pop("x-propertyNames", None)
        if names is not None:
            node["patternProperties"] = {names["pattern"]: node.get("additionalProperties", {})}
            node["additionalProperties"] = False
        for value in node.values():
            promote_property_names(value)
    elif isinstance(node, list):
        for value in node:
            promote_property_names(value)


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    promote_property_names(raw_schema)
