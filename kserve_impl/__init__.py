"""The KServe stack: each pipeline stage as a `kserve.Model` server, chained by an InferenceGraph.

`stage` is the base every stage model shares and `server` the model-server entrypoint the
manifests run; `graph` is the local InferenceGraph router, `local` brings the whole stack up from
`manifests/kserve/` on one machine, `rollout` rolls it out locally and `cluster` on a cluster.
"""
