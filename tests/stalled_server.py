"""`python -m tests.stalled_server STALL [server options]`: server.py whose draws stop for good at
one point, for the crash tests (the test then SIGKILLs the process). STALL is `before_finish`
(the proof is frozen, the result not committed) or `after_winners=N` (the result is committed
and N winners are copied onto their joins).

A test seam that production cannot switch on: it lives in tests/ and hands services.py a Draws
subclass before main() runs; server.py has no such option."""
import logging
import sys

import server
import services
from tests.stalling import stalling_draws


def main() -> None:
    stall = sys.argv.pop(1)
    logging.getLogger("gift_lottery").warning("test seam: draws stall at %s", stall)
    services.Draws = stalling_draws(stall)
    server.main()


if __name__ == "__main__":
    main()
