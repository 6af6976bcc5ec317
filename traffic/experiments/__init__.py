"""Experiment runner: DEFT's and the thesis' parameter sweeps, reproduced on the real data plane.

How it fits together::

    catalog.py   named experiments: which parameters sweep over which values, fixed settings,
                 trials, and a short "smoke" grid for CI       (deftctl experiment list)
    runner.py    grid x trials -> for each point: a fresh chain, traffic, measurements -> CSV rows,
                 with a progress bar                              (deftctl experiment run NAME)
    chain.py     one point's namespace network (prefix ``tx``): client (traffic generator) ->
                 stamper (nf.stamper, TUN) -> NF primaries (nf.instance) [+ replicas] -> sink
    report.py    CSV -> PNG plots (matplotlib; mean +- std over trials) and a markdown report

Each point starts from nothing (new namespaces, new processes), so points never influence each
other; the end-to-end numbers come from the traffic sink (loss, latency p50/p99, delivered pps)
and the NF-internal ones from the instances' metrics (DEFT's set: drops, time in input/output
buffer, commit latency).
"""
