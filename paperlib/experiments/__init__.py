"""The experiment harness, built on :mod:`paperlib.core` only.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``train``          training a masker against a black box (``python -m paperlib.train``)
``cifar``          training, evaluating and exporting the CIFAR-10 black box
``baselines``      gradient saliency maps (Grad, guided backprop, Grad-CAM) and their boxes
``iterative``      per-image mask optimisation with the paper's soft terms (Fig. 3, Fong & Vedaldi's Mask)
``extremal``       per-image extremal perturbations: smooth masks of a fixed area (Fig. 2's SSR / SDR)
``extremal_loc``   Table 2's per-image Mask row with extremal masks, tuned on held-out images
``evaluate``       the paper's tables (1, 2, 3 and CIFAR-10)
``presets``        every ``quick`` / ``full`` preset of the project
``ablation``       mask quality on the tuning split; the recipe ablation of the masker
``_loop``          the skeleton shared by the two training loops
=================  ==========================================================================
"""
