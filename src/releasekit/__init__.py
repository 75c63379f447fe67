"""releasekit: publish Python packages to PyPI and TestPyPI safely, from a laptop or from CI."""

__version__ = "0.1.0"
