"""The lender: a transparent cash-flow scorecard from a shop's payments, and a credit line."""
