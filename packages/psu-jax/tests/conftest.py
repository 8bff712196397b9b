"""float64 for the whole test session: the spec's tolerances are checked at float64 here."""

import jax

jax.config.update("jax_enable_x64", True)
