"""The command-centre wall (大屏) at ``/wall``: a display token's page, pushed to by Server-Sent Events."""
