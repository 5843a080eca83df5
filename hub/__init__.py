"""The hub assembled: the app, the CLI, the demo, and the operator's domains.

It imports every layer below it and is imported by none of them.
"""
