"""``transferlab bench``: extraction speed against this machine's own ceiling and the practical's usual code.
:mod:`~transferlab.bench.runner` runs the configurations, each in a child process (:mod:`~transferlab.bench.child`);
:mod:`~transferlab.bench.ceiling` and :mod:`~transferlab.bench.ceiling_int8` measure the fastest kernels."""
