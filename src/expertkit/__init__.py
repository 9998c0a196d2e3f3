"""expertkit: small task experts with one prompt contract."""
__version__ = "0.1.0"
