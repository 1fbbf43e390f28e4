"""The dashboard's pages, one folder each (``ids``, ``layout``, ``presenters``, ``callbacks``),
listed in ``registry``."""
