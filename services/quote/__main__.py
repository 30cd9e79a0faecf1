"""`python -m services.quote`: run the quote service."""

import asyncio

from services.quote.app import create_app

if __name__ == "__main__":
    asyncio.run(create_app().run())
