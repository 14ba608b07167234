"""doc.md: a model rendered as Markdown, with the sections of the vendor's API pages
(structure tree, entities, properties with permissions and attributes, actions, data types)."""

from __future__ import annotations

from typing import Any

from vapixlog.dca.model import Entity, Model, Operation

_KEYWORD_LABELS = {
    "minLength": "Minimum Length",
    "maxLength": "Maximum Length",
    "pattern": "Pattern",
    "enum": "Enum",
    "format": "Format",
    "minimum": "Minimum Value",
    "maximum": "Maximum Value",
    "items": "Items",
    "minItems": "Minimum Items",
    "maxItems": "Maximum Items",
}


def model_markdown(model: Model) -> str:
    root_name = f"{model.id}.v{model.major}"
    lines = [
        f"# {model.document.get('name', model.id)} API",
        "",
        f"Version {model.version} ({model.state}), at `/config/rest/{model.id}/"
        f"{model.version_segment}`.",
        "",
        model.document.get("description", ""),
        "",
        "## Structure",
        "",
        "```",
        *_tree(model.root, root_name, 0),
        "```",
        "",
        "## Entities",
        "",
    ]
    for entity in _entities(model.root):
        lines += _entity_section(entity, f"{root_name}.{entity.path}" if entity.path else root_name)
    lines += ["## Data types", ""]
    for name, spec in (model.document.get("data_types") or {}).items():
        lines += _data_type_section(name, spec)
    return "\n".join(lines).rstrip() + "\n"


def _entities(entity: Entity) -> list[Entity]:
    found = [entity]
    for child in entity.entities.values():
        found += _entities(child)
    return found


def _tree(entity: Entity, name: str, depth: int) -> list[str]:
    pad = "  " * depth
    kind = "Root Entity" if depth == 0 else "Entity"
    lines = [f"{pad}{name} ({kind})"]
    lines += [f"{pad}  {prop} (Property)" for prop in entity.properties]
    lines += [f"{pad}  {action} (Action)" for action in entity.actions]
    for child_name, child in entity.entities.items():
        lines += _tree(child, child_name, depth + 1)
    return lines


def _roles(operation: Operation) -> str:
    order = ["admin", "operator", "viewer"]
    return ", ".join(role for role in order if role in operation.roles)


def _entity_section(entity: Entity, name: str) -> list[str]:
    operations = [
        f"{label} - Permissions: {_roles(op)}"
        for label, op in (
            ("GET", entity.get),
            ("SET", entity.set),
            ("ADD", entity.add),
            ("REMOVE", entity.remove),
        )
        if op
    ]
    lines = [
        f"### {name}",
        "",
        f"- Description: {entity.description}",
        f"- Type: {'Map' if entity.collection == 'map' else 'Singleton'}",
    ]
    if entity.key_property:
        lines.append(f"- Key property: {entity.key_property}")
    lines += [f"- Operations: {'; '.join(operations) or 'none'}", "", "#### Properties", ""]
    if not entity.properties:
        lines += ["This entity has no properties", ""]
    for prop in entity.properties.values():
        ops = [
            f"{label} - Permissions: {_roles(op)}"
            for label, op in (("GET", prop.get), ("SET", prop.set))
            if op
        ]
        data_type = prop.data_type if isinstance(prop.data_type, str) else prop.data_type["type"]
        lines += [
            f"##### {prop.name}",
            "",
            f"- Description: {prop.description}",
            f"- Datatype: {data_type}",
            f"- Operations: {'; '.join(ops) or 'none'}",
            f"- Attributes: Nullable: {_yes(prop.nullable)}",
            "",
        ]
    lines += ["#### Actions", ""]
    if not entity.actions:
        lines += ["This entity has no actions", ""]
    for action in entity.actions.values():
        trigger = _roles(action.trigger) if action.trigger else "none"
        lines += [
            f"##### {action.name}",
            "",
            f"- Description: {action.description}",
            f"- Request Datatype: {action.request_type or 'Empty Object'}",
            f"- Response Datatype: {action.response_type or 'Empty Object'}",
            f"- Trigger Permissions: {trigger}",
            "",
        ]
    return lines


def _data_type_section(name: str, spec: dict[str, Any]) -> list[str]:
    base = spec.get("type", "")
    lines = [f"### {name}", "", f"| {name} | |", "| --- | --- |"]
    lines.append(f"| Description | {spec.get('description', '')} |")
    lines.append(f"| Type | {'complex' if base == 'object' else base} |")
    for keyword, label in _KEYWORD_LABELS.items():
        if keyword in spec:
            value = spec[keyword]
            lines.append(
                f"| {label} | `{value}` |" if keyword == "pattern" else f"| {label} | {value} |"
            )
    for field_name, field in (spec.get("fields") or {}).items():
        nullable = _yes(field.get("nullable"))
        lines.append(
            f"| Field `{field_name}` | Type: {field['type']}; Nullable: {nullable}; "
            f"{field.get('description', '')} |"
        )
    return [*lines, ""]


def _yes(value: object) -> str:
    return "Yes" if value else "No"
