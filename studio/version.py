"""The studio's version, in a module of its own so that any part can name it without importing
the package (whose __init__ imports the engine)."""

__version__ = "0.2.0"
