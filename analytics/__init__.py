"""Analytics across shops: aggregates that never reveal one shop, under a privacy budget.

Shops' sales are added up per day and key into sealed weekly rollups
(:mod:`analytics.rollups`), held decrypted only in memory
(:mod:`analytics.cache`), counted over the shops whose consent allows it
(:mod:`analytics.scope`), bounded per shop and released with noise through
OpenDP (:mod:`analytics.privacy`), and charged to the consumer's budget
(:mod:`analytics.budget`).
"""
