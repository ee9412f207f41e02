"""The Ray Serve stack: each pipeline stage as a Serve deployment, composed by DeploymentHandles.

`app.build_app` is the typed application builder the Serve config imports; `ingress` serves the
OpenAI chat API; `local` runs a real Ray head on loopback for `twinserve up rayserve` and tests.
"""
