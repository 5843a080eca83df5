"""The web console: the shopkeeper's portal (``/portal/``) and the auditor's console
(``/console/``), server-rendered, in Chinese and English.

A client of the same services and the same gate as the REST API: its pages
declare the same permits and call the same service functions, and its actions
post to the API's own endpoints with the session cookie and a CSRF token. It
holds no SQL and adds no second path to shop data.
"""
