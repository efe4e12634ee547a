"""Tools on top of the core and the experiments.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``bench``          the speed benchmark (masks/s, latency, memory)
``realtime``       optimised CPU back ends of a masker (``fast_masker``)
``timing``         timing helpers shared by ``bench`` and ``realtime``
``video``          saliency over the frames of a clip
``retrain``        retraining and shipping the shipped models
``report``         ``figures/report.md`` from the tables and figures
``viz``            plotting helpers of the notebooks
``widgets``        the notebooks' class and image selectors (ipywidgets)
``reproduce``      ``make reproduce``: run the notebooks, skip what lacks data, summarise
``getdata``        ``make data``: download, verify and convert the data sets
``sample_images``  real photographs that need no data folder (scikit-image's samples)
=================  ==========================================================================
"""
