"""The exercise programme, as HSEEP describes it: exercises as files, played on an exercise clock,
scored from the run's timeline, evaluated by people, and planned across the services.

- ``models``: the exercise format (objectives, the MSEL's injects, scripted responses);
- ``library``: reading exercise files and checking them against the runbook library.
"""
