"""Pure array code, no I/O: the kNN graph, label spreading, review, audit, diagnostics, the UMAP map, teaching demos."""
