"""Collectors: each turns one source (host, NICs, OVS, NF instances) into schema points.

Every collector implements :class:`agent.collectors.base.Collector`: ``collect(now_ns)`` returns
points stamped ``now_ns`` and keeps the previous counters itself (per instance, no module state) to
turn cumulative counters into per-interval rates.
"""
