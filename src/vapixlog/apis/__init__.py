"""DCA APIs served by the device: one package per API (model JSON + handlers)."""
