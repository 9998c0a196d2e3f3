"""The shipped experts, installed with expertkit as the package ``expertkit_experts``.

Each folder is one expert (``expert.yaml``, its data and resources) and its dataset generator
(``generator.py``), registered in the ``expertkit.generators`` entry-point group like any user's
generator. expertkit finds the folders through :mod:`importlib.resources`
(:func:`expertkit.models.base.shipped_experts_dir`), in a checkout and in an installed copy alike.
"""
