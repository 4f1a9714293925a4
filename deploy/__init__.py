"""Deployments of lightcone: ``deploy/fly/`` (Fly.io: the image, one app per node kind) and
:mod:`deploy.local` (``lightcone up``: a core and edges on this machine, with simulated
geography). Neither is imported by a node: a core or an edge runs the same way in both."""
