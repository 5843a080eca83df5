"""What consumers propose to a shop, and the shopkeeper's answer: the value a shop gets back."""
