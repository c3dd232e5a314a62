"""Many runs: study files (:mod:`.spec`), grids planned, skipped, resumed (:mod:`.grid`), one run as a task
(:mod:`.tasks`) and where tasks run (:mod:`.executors`). Imports the run lifecycle and below."""
