"""MongoDB access, one module per collection. Each module owns its collection's ids, indexes,
projections and queries, so every atomic update that carries a product guarantee can be read in
one place. Nothing else in the code names a collection."""
