"""``schema`` grammars for constrained decoding, one module per output kind (see :mod:`expertkit.constrain`)."""
