"""The wall has no server-side Dash callbacks (it is pushed to over /wall/events and reads
/wall/state), so no callback value types: the guard has nothing to check for it."""
from typing import Any

VALUES: dict[tuple[str, str], Any] = {}
