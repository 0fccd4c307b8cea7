"""Exports beyond model-latest: formats, calibration, export, scoring (docs/exports.md)."""
