"""DEFT-RL placement: decide which server hosts each VNF, and move VNFs when that decision changes.

Layers (each a module): :mod:`placement.scenario` (YAML worlds) -> :mod:`placement.traces` (exogenous
load, per seed) -> :mod:`placement.simulator` (vectorised cluster model) -> :mod:`placement.observation`
(THE observation, shared with the live service) -> :mod:`placement.env` (gymnasium env) ->
:mod:`placement.policies` (baselines, ILP, RL) -> :mod:`placement.train` / :mod:`placement.evaluate`
-> :mod:`placement.service` (``deftctl placement serve``: InfluxDB telemetry in, SSH migrations out).
Torch is imported only by the RL modules, so the rest stays light.
"""
