"""The model families' Keras classes, one module each (``mf``, ``biased_mf``, ``ncf``,
``neumf``) on the contract of ``base.RecModel``; ``build`` sizes one for a run through the
registry in ``recsys.families``."""
