"""Who may see and do what: capabilities and roles, accounts and sign-in, the viewer's scope, the one
issue-visibility rule."""
