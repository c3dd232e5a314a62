"""What a study shows: the runs table and summaries (:mod:`.table`), the HTML site (:mod:`.site`), the figures
(:mod:`.viz`). Reads run folders; imports the run lifecycle and below, never orchestration (a sibling)."""
