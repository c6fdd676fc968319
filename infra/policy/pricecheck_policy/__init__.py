"""Policy rules for the PriceCheckTN Pulumi stacks."""
