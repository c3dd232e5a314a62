"""A run's life: set up on the machine that trains it (:mod:`.setup`), trained (:mod:`.training`), scored
(:mod:`.evaluation`, :mod:`.model_selection`), drawn (:mod:`.run_figures`), tracked (:mod:`.trackers`).
Imports scoring and below, never orchestration, reports or the command line."""
