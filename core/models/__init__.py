"""Models: the registry (``registry``), loading weights (``loading``) and token helpers (``tokens``).

Training and evaluation both go through these, so a model is found, loaded and tokenized the
same way whichever side uses it.
"""
