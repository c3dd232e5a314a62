"""The one metric runner (:mod:`.runner`) and scoring any representation through it (:mod:`.representation`:
``evaluate_representation``, ``evaluate_codes``). Imports metrics, models, data sets and base."""
