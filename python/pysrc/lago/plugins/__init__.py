"""Lago's ``lago.plugins`` package (the names suites import from
``lago.plugins.vm``). Plugins themselves are shared libraries: see
docs/plugins.md."""
