"""Price sensitivity: own-price elasticity per category with fixed effects, and what-if answers. Pure logic, no SQL."""
