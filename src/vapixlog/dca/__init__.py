"""The Device Configuration API framework: model, validation, REST mapping."""
