"""An edge node: stateless, serves from memory what the core pushes to it."""
