"""Deployment helpers: ``deployments.serve`` serves every flow locally on its schedule."""
