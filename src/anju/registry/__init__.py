"""The registry: one standard, three actuals (一标三实) and the records around them."""
