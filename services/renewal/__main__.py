"""`python -m services.renewal`: run the renewal service."""

import asyncio

from services.renewal.app import create_app

if __name__ == "__main__":
    asyncio.run(create_app().run())
