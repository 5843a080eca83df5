"""Reference consumers of a Cornerstore hub, each a process of its own that speaks HTTP.

- :mod:`cornerstore_consumers.warehouse`: a wholesaler's warehouse with stock,
  lead times and an order API with idempotency keys (it reads no shop data);
- :mod:`cornerstore_consumers.replenishment`: forecasts each SKU's demand from
  the shop's sales and proposes what to order (consent: ``replenishment``);
- :mod:`cornerstore_consumers.lender`: a transparent cash-flow scorecard and a
  credit line with its reasons (consent: ``credit-assessment``).
"""
