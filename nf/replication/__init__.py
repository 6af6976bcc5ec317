"""State replication between NF instances: wire protocol (``protocol``), primary side
(``primary``: per-replica TCP channels, pipelined batches, output commit) and replica side
(``replica``: listener that applies deltas, acknowledges and fences old epochs)."""
