"""A real SMTP server for roster's tests (aiosmtpd), writing every message
it accepts as one JSON line to a file.

usage: smtp_sink.py FILE PORT   (PORT 0 picks a free port)
Prints the port it listens on, then serves until killed.
"""

import asyncio
import json
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, path):
        self.path = path

    async def handle_DATA(self, server, session, envelope):
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
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(path), hostname="localhost"),
        "127.0.0.1",
        port,
        reuse_address=True,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
