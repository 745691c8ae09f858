"""values.yaml and values.schema.json describe the same settings, and every setting is commented."""

from __future__ import annotations

import json

import jsonschema
import yaml

from conftest import CHART

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)


def settings(schema: dict, values: dict, node: yaml.MappingNode, path: str = ""):
    """Yields (path, line, schema, value) for every leaf setting, walking values and schema together."""
    for key_node, value_node in node.value:
        key = key_node.value
        sub = schema.get("properties", {}).get(key)
        assert sub is not None, f"values.yaml has {path}{key}, the schema does not"
        value = values[key]
        if isinstance(value_node, yaml.MappingNode) and value_node.value and "properties" in sub:
            yield from settings(sub, value, value_node, f"{path}{key}.")
        else:
            yield f"{path}{key}", key_node.start_mark.line, sub, value


LEAVES = list(settings(SCHEMA, VALUES, yaml.compose(VALUES_TEXT)))


def test_defaults_satisfy_the_schema():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)


def test_schema_has_no_setting_missing_from_values_yaml():
    def paths(schema: dict, values: dict, prefix: str = ""):
        for key, sub in schema.get("properties", {}).items():
            if key == "global":  # Helm's own, for subcharts
                continue
            assert key in values, f"the schema has {prefix}{key}, values.yaml does not"
            if "properties" in sub and isinstance(values[key], dict) and values[key]:
                paths(sub, values[key], f"{prefix}{key}.")

    paths(SCHEMA, VALUES)


def test_objects_that_are_settings_reject_unknown_keys():
    def walk(schema: dict, path: str):
        if "properties" in schema and schema.get("type") == "object":
            assert schema.get("additionalProperties") is False, f"{path or 'the top level'} accepts any key"
            for key, sub in schema["properties"].items():
                if key != "global":
                    walk(sub, f"{path}{key}.")

    walk(SCHEMA, "")


def test_every_setting_is_commented():
    lines = VALUES_TEXT.splitlines()
    uncommented = [path for path, line, _, _ in LEAVES if not lines[line - 1].strip().startswith("#")]
    assert not uncommented, f"add a comment line above: {uncommented}"
