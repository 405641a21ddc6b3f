"""Conventions shared by every metric family (where the literature differs, which variant cfx
reports):

- "changed" means |x'_j - x_j| > :data:`CHANGE_TOL` = 1e-5 (CARLA's L0 tolerance) everywhere:
  L0, both redundancies, immutable features.
- ``l2`` is the true Euclidean norm ‖x' - x‖₂. CARLA's "L2_distance" is the *squared* norm;
  square ``l2`` to compare with CARLA tables.
- ``validity`` is recomputed from the classifier (p(y⁺|x') ≥ τ, τ = ``result.threshold``),
  never read from ``result.target_probs``, so a result can be re-evaluated under a new model.
- Target -1 marks an untargeted row: it is judged against "any class but the factual's
  predicted one", as the search judges it.
- Means are over *all* counterfactuals, valid or not (CARLA drops invalid ones before
  computing distances and yNN; filter with ``per_counterfactual["label_validity"]`` to reproduce
  that). Metrics undefined for a counterfactual are NaN and means/sds ignore NaN.
"""

#: |Δ_j| above this counts as a change (CARLA's ``np.isclose(delta, 0, atol=1e-5)``).
CHANGE_TOL = 1e-5
