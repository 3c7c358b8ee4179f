"""Monte Carlo campaigns (``fsil mc``; docs/montecarlo.md).

Modules: ``cli`` (the command), ``campaign`` (Dask client, journal, resume), ``task`` (one run
as a worker flies it), ``engine`` (the one call into the run engine), ``report`` and ``stats``
(results, statistics, plots), ``replay`` (a run again, or as a file), ``compare`` (two
campaigns), ``bench`` (``fsil bench mc``). The dispersions themselves are ``hil.dispersions``.
"""
