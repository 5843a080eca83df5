"""Stored shop data: sales, inventory counts and payments, sealed per shop.

Only the gate and the ingestion service use :mod:`cornerstore.records.repository`;
no other module builds queries over shop data.
"""
