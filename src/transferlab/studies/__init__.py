"""The practical's studies: each answers one question with a measured table, recorded with its provenance.
:mod:`~transferlab.studies.registry` declares them (light: the command line reads it for ``--help``),
:mod:`~transferlab.studies.runner` runs one by name."""
