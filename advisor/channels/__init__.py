"""Channels: translate a medium's I/O into AdvisorService calls and render the steps it returns."""
