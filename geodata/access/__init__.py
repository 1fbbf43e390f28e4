"""Who may see what: the viewer's scope and the one issue-visibility rule."""
