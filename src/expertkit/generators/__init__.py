"""The shipped experts' dataset generators (built on :mod:`expertkit.authoring.generators`)."""
