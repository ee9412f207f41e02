"""`python -m kserve_impl.graph --graph <yaml> --service NAME=URL ...`: the local router."""

from kserve_impl.graph.app import main

main()
