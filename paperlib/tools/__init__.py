"""Tools on top of the core and the experiments.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``bench``          the speed benchmark (masks/s, latency, memory)
``realtime``       optimised CPU back ends of a masker (``fast_masker``)
``timing``         timing a call, a masker, a baseline: shared by ``bench`` and ``realtime``
``memory``         peak memory of one call (``bench``)
``video``          saliency over the frames of a clip
``retrain``        retraining and shipping the shipped models
``report``         ``figures/report.md`` from the tables and figures
``viz``            plotting helpers of the notebooks
``widgets``        the notebooks' class and image selectors (ipywidgets)
``reproduce``      ``make reproduce``: run the notebooks, skip what lacks data, summarise
``getdata``        ``make data``: download, verify and convert the data sets
``sample_images``  real photographs that need no data folder (scikit-image's samples)
``explain``        ``paperlib explain``: masks and overlays for photographs, folders, videos
``explain_bench``  what explaining costs on top of classifying (one pass against two)
``trainspeed``     how fast the masker trains (one process against several, epoch estimate)
``claims``         the ledger of the papers' claims with our numbers and verdicts
``convert``        old pickled checkpoints into the safe form
=================  ==========================================================================
"""
