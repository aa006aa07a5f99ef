"""A real SMTP server for roster's tests (aiosmtpd), writing every message
it accepts as one JSON line to a file.

usage: smtp_sink.py FILE PORT [DELAY]   (PORT 0 picks a free port; DELAY
seconds to take over each message before accepting it, as a slow server does)
Prints the port it listens on, then serves until killed.

Like many servers, it does not offer SMTPUTF8 (aiosmtpd's default). A
recipient whose local part starts with "nobody" is refused for good (550),
as a server refuses a mailbox that does not exist.
"""

import asyncio
import json
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, path, delay):
        self.path = path
        self.delay = delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("nobody"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 Message accepted"


async def main():
    path, port = sys.argv[1], int(sys.argv[2])
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(path, delay), hostname="localhost"),
        "127.0.0.1",
        port,
        reuse_address=True,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
