"""drainage: off-site traffic drainage for independent stores."""

__version__ = "0.1.0"
