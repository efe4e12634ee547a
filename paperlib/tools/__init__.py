"""User-facing tools built on the library: notebook runner, data download, widgets, sample photographs."""
