"""Element ids of the wall page (all ``wall-…``); wall.js finds its elements by them."""
PREFIX = "wall-"
ROOT = f"{PREFIX}root"
STATE = f"{PREFIX}state"        # the opening state (JSON)
TEXT = f"{PREFIX}text"          # the page's strings (JSON)
MAP = f"{PREFIX}map"
FEED = f"{PREFIX}feed"
RANK = f"{PREFIX}rank"
TREND = f"{PREFIX}trend"
CLOCK = f"{PREFIX}clock"
FRESH = f"{PREFIX}fresh"
STATUS = f"{PREFIX}status"
CAPTION = f"{PREFIX}caption"
STOPPED = f"{PREFIX}stopped"
