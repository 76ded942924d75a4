"""Training the default diffusion models: ``python -m chansim.train {uqdm,diffc,export} ...``.

See :mod:`chansim.train.__main__` for the options; :mod:`.loop` holds the loop,
:mod:`.data` the crop sampler and held-out set, :mod:`.export` the model cards.
"""
