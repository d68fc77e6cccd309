"""MongoDB access: one module per aggregate, so every atomic update that carries a product
guarantee can be read in one place."""
