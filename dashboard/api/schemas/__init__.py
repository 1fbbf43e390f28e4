"""The HTTP API's request and response models, one module per resource (``issues``, ``meta``,
``contact``, ``diary``, ``notices``, ``open311``) and the shared field types in ``common``."""
