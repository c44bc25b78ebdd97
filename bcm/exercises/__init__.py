"""The exercise programme, as HSEEP describes it: exercises as files, played on an exercise clock,
scored from the run's timeline, evaluated by people, and planned across the services.

- ``models``: the exercise format (objectives and their measures, the MSEL's injects, scripted
  responses, the schedule);
- ``library``: reading exercise files and checking them against the runbook library;
- ``clock``: the exercise clock (STARTEX plus an offset compressed by the speed);
- ``play``: playing one (STARTEX, injects on the clock, contingencies, scripted responses, ENDEX);
- ``evaluation``: each objective scored from the timeline, with a suggested HSEEP rating;
- ``observations``: evaluators' observations and ratings, and the hot wash (role-checked);
- ``programme``: the programme by service, next scheduled exercise, coverage gaps.

Corrective actions (exercises and real disruptions alike) are in ``bcm.corrective`` and the store.
"""
