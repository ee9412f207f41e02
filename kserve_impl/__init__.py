"""The KServe stack: each pipeline stage as a `kserve.Model` server, chained by an InferenceGraph.

`server` is the model-server entrypoint the manifests run, `graph` the local InferenceGraph runner,
`local` brings the whole stack up from `manifests/kserve/` on one machine.
"""
