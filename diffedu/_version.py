"""The package version, in one place: `diffedu.__version__`, `diffedu --version` and the wheel's metadata.

Imports: nothing.  Layer base.
"""
__version__ = "0.1.0"
