"""A wholesaler's warehouse shops order from: stock, lead times, orders placed once."""
