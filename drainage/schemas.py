"""JSON Schemas of config.yaml and campaign files, for editor autocompletion (yaml-language-server)."""

from __future__ import annotations

from typing import Any

from drainage.campaigns import Campaign
from drainage.config import Config
from drainage.registry import channel_types


def campaign_schema() -> dict[str, Any]:
    schema = Campaign.model_json_schema(by_alias=True)
    schema["title"] = "drainage campaign"
    return schema


def config_schema() -> dict[str, Any]:
    """Config schema where each channel instance is validated by its plugin's own options model."""
    schema = Config.model_json_schema(by_alias=True)
    schema["title"] = "drainage config.yaml"
    defs = schema.setdefault("$defs", {})
    choices = []
    for name, plugin in sorted(channel_types().items()):
        options = plugin.Options.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(options.pop("$defs", {}))
        options.setdefault("properties", {}).setdefault("type", {})["const"] = name
        options["required"] = sorted(set(options.get("required", [])) | {"type"})
        def_name = f"channel_{name}"
        defs[def_name] = options
        choices.append({"$ref": f"#/$defs/{def_name}"})
    schema["properties"]["channels"]["additionalProperties"] = {"oneOf": choices}
    return schema
