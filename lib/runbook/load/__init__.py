"""The load: Locust run as a subprocess (one process, or a master and its workers), its progress,
and the sampler that reads the server side beside it (processes here, Prometheus text, the cluster's reads)."""
