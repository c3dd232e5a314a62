"""The base every layer stands on: errors, argument checks, the registry pattern, files written atomically and
read through the run folder's gate (:mod:`.runs`), signals, devices. Imports nothing else of the package."""
