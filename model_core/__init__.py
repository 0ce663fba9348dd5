"""Pure library of the Numerai service: data, cleaning, model, training. No dagster, no environment."""
