"""The grid map page (``/``, URL state ``?grid=<code>&issue=<id>``): ids, layout, presenters, callbacks."""
