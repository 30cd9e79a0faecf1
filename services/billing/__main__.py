"""`python -m services.billing`: run the billing service."""

import asyncio

from services.billing.app import create_app

if __name__ == "__main__":
    asyncio.run(create_app().run())
